#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver server from Debian's packages (`chromium` and
# `chromium-driver`, whatever version the configured Debian release ships: a browser must take
# its security updates, so it is not pinned), for the studio's browser test
# (tests/tests/studio_browser.rs). Prints the two paths on stdout; progress goes to stderr.
#
# Idempotent: does nothing when both are installed. A first install downloads about 164 MB and
# takes about 505 MB on disk with what Debian recommends beside it (fonts among them; Debian 12,
# measured on our machine); it needs root and apt-get.
# Nothing is downloaded at test time: the test drives this Chromium through chromedriver.
set -euo pipefail

say() { echo "install-browser: $*" >&2; }
die() { echo "install-browser: ERROR: $*" >&2; exit 1; }

installed() {
    [[ -x /usr/bin/chromium || -x /usr/lib/chromium/chromium ]] && [[ -x /usr/bin/chromedriver ]]
}

if ! installed; then
    command -v apt-get >/dev/null || die "apt-get is required (Debian's chromium and chromium-driver packages)"
    [[ "$(id -u)" == 0 ]] || die "installing packages needs root: run it as root, or install chromium and chromium-driver yourself"
    say "installing Debian's chromium and chromium-driver (about 164 MB to download, 505 MB on disk) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q=2 chromium chromium-driver >/dev/null 2>&1; then
        say "not in the apt lists; running apt-get update"
        apt-get update -q=2 >/dev/null 2>&1 || die "apt-get update failed"
        apt-get install -y -q=2 chromium chromium-driver >/dev/null \
            || die "apt-get install chromium chromium-driver failed"
    fi
    installed || die "chromium or chromedriver is missing after the install"
    say "installed $(chromedriver --version 2>/dev/null | awk '{print $1, $2}')"
fi

if [[ -x /usr/lib/chromium/chromium ]]; then echo /usr/lib/chromium/chromium; else echo /usr/bin/chromium; fi
echo /usr/bin/chromedriver
