#!/usr/bin/env bash
# Runs the whole test suite: installs the pinned nats-server (and the deployment checkers) into
# the git-ignored .tools/ when missing, and Debian's headless Chromium for the studio's browser
# test (its screenshot lands in target/ci-artifacts/); builds once, runs every test with nextest
# (each test starts its own nats-server on free loopback ports), the default playbook's
# conversation tests, then the deployment checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Progress lines on stderr, in colour only on a terminal.
say() {
    if [[ -t 2 ]]; then printf '\033[1m==>\033[0m %s\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# Each installer prints its progress on stderr and its result on stdout (discarded here).
say "checking the pinned nats-server in .tools/ (installs it when missing: about 19 MB)"
scripts/install-nats-server.sh >/dev/null
say "checking the deployment tools in .tools/ (installs them when missing: about 425 MB)"
# Prometheus (for the observability tests) and the deployment checkers.
scripts/install-deploy-tools.sh >/dev/null
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$PWD/.tools/nats-server/bin/nats-server}"
say "checking headless Chromium for the studio's browser test (installs Debian's chromium and chromium-driver when missing: about 164 MB)"
if scripts/install-browser.sh >/dev/null; then
    # Installed, so the browser test must run: a missing browser fails it instead of skipping.
    export STUDIO_BROWSER_REQUIRED=1
elif [[ -n "${CI:-}" ]]; then
    echo "test.sh: CI must run the studio's browser test, and Chromium could not be installed" >&2
    exit 1
else
    say "WARNING: no Chromium (installing needs root and apt-get): the studio's browser test will be skipped"
fi

say "building the workspace (a first build takes several minutes; see the README)"
cargo build --workspace --all-targets --locked
say "running the tests"
cargo nextest run --workspace --locked "$@"
# The default playbook's conversation tests, as a user's CI would run them on theirs.
cargo run --locked --quiet --bin saltedcx-sim -- test tests/conversations
say "checking the deployment files"
scripts/check-deploy.sh
