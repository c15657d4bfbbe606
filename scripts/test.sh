#!/usr/bin/env bash
# Runs the whole test suite: installs the pinned nats-server (and the deployment checkers) into
# the git-ignored .tools/ when missing, builds once, runs every test with nextest (each test
# starts its own nats-server on free loopback ports), the default playbook's conversation tests,
# then the deployment checks.
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

say "building the workspace (a first build takes several minutes; see the README)"
cargo build --workspace --all-targets --locked
say "running the tests"
cargo nextest run --workspace --locked "$@"
# The default playbook's conversation tests, as a user's CI would run them on theirs.
cargo run --locked --quiet --bin saltedcx-sim -- test tests/conversations
# How well the default playbook understands conversations it was never tuned on: a report of
# the held-out corpus (accuracy per category and language, confident wrong answers), not a
# verdict.
say "scoring the held-out corpus (a report, not a test)"
cargo run --locked --quiet --bin saltedcx-sim -- score tests/corpus/heldout
say "checking the deployment files"
scripts/check-deploy.sh
