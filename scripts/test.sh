#!/usr/bin/env bash
# Runs the whole test suite: installs the pinned nats-server (and the deployment checkers) into
# the git-ignored .tools/ when missing, builds once, runs every test with nextest (each test
# starts its own nats-server on free loopback ports), the default playbook's conversation tests,
# then the deployment checks.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-nats-server.sh >/dev/null
# Prometheus (for the observability tests) and the deployment checkers.
scripts/install-deploy-tools.sh >/dev/null
export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$PWD/.tools/nats-server/bin/nats-server}"

cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked "$@"
# The default playbook's conversation tests, as a user's CI would run them on theirs.
cargo run --locked --quiet --bin saltedcx-sim -- test tests/conversations
scripts/check-deploy.sh
