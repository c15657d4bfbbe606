#!/usr/bin/env bash
# Runs the whole test suite: installs the pinned nats-server (and the deployment checkers) into
# the git-ignored .tools/ when missing, and Debian's headless Chromium for the studio's browser
# test (its screenshot lands in target/ci-artifacts/); builds once, then runs every stage — every
# test with nextest (each test starts its own nats-server on free loopback ports), the default
# playbook's conversation tests, the held-out corpus's score (a report), the deployment checks —
# even when an earlier one fails, and ends with a summary of the stages. Exits non-zero if any stage failed. Arguments go to
# `cargo nextest run`.
set -uo pipefail
cd "$(dirname "$0")/.."

# Progress lines on stderr, in colour only on a terminal.
say() {
    if [[ -t 2 ]]; then printf '\033[1m==>\033[0m %s\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# Without the tools nothing else can run: these two steps stop the script when they fail.
# Each installer prints its progress on stderr and its result on stdout (discarded here).
say "checking the pinned nats-server in .tools/ (installs it when missing: about 19 MB)"
scripts/install-nats-server.sh >/dev/null || { say "installing nats-server failed"; exit 1; }
say "checking the deployment tools in .tools/ (installs them when missing: about 425 MB)"
# Prometheus (for the observability tests) and the deployment checkers.
scripts/install-deploy-tools.sh >/dev/null || { say "installing the deployment tools failed"; exit 1; }
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

passed=()
failed=()
skipped=()
# stage NAME COMMAND...: runs one stage and records its verdict; never stops the script.
stage() {
    local name="$1"
    shift
    if "$@"; then
        passed+=("$name")
    else
        say "$name: FAILED (exit $?)"
        failed+=("$name")
    fi
}

say "building the workspace (a first build takes several minutes; see the README)"
stage "build" cargo build --workspace --all-targets --locked
if [[ ${#failed[@]} -eq 0 ]]; then
    say "running the tests"
    stage "tests (cargo nextest)" cargo nextest run --workspace --locked "$@"
    # The default playbook's conversation tests, as a user's CI would run them on theirs.
    say "running the default playbook's conversation tests"
    stage "conversation tests (saltedcx-sim test)" \
        cargo run --locked --quiet --bin saltedcx-sim -- test tests/conversations
    # How well the default playbook understands conversations it was never tuned on: a report of
    # the held-out corpus (accuracy per category and language, confident wrong answers), not a
    # verdict (it exits 0 whatever the figures).
    say "scoring the held-out corpus (a report, not a test)"
    stage "held-out score (saltedcx-sim score, a report)" \
        cargo run --locked --quiet --bin saltedcx-sim -- score tests/corpus/heldout
else
    # Nothing to test without a build; the deployment checks need none.
    skipped+=("tests (cargo nextest)" "conversation tests (saltedcx-sim test)" "held-out score")
fi
say "checking the deployment files"
stage "deployment checks (scripts/check-deploy.sh)" scripts/check-deploy.sh

say "summary"
for name in "${passed[@]}"; do printf '  passed:  %s\n' "$name" >&2; done
for name in "${skipped[@]}"; do printf '  skipped: %s (the build failed)\n' "$name" >&2; done
for name in "${failed[@]}"; do printf '  FAILED:  %s\n' "$name" >&2; done
if [[ ${#failed[@]} -gt 0 ]]; then
    say "${#failed[@]} of $((${#passed[@]} + ${#failed[@]})) stages failed"
    exit 1
fi
say "all ${#passed[@]} stages passed"
