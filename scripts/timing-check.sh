#!/usr/bin/env bash
# Runs the checks kept out of the default suite because they measure time and are noisy on
# shared machines: the statistical tests that bearer-token comparison takes the same time
# whether a wrong token differs early or late, and whatever the length of the token presented.
# Run it on an otherwise quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-nats-server.sh >/dev/null
cargo nextest run -p yourlogic-tests --test secrets_and_auth --run-ignored only "$@"
