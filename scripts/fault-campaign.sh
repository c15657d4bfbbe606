#!/usr/bin/env bash
# Fault campaign: rounds of randomised faults against a 3-node NATS cluster (nats-server kill -9
# and restart, leader step-downs, worker kill -9 and SIGTERM, scaling 1 -> 3 -> 1; one at a time
# and two at once) under a Salted CX-like load, each round audited on its own: sent,
# acknowledged, answered, lost, order violations, conflicting answers, late answers, longest
# stall. A fresh pipeline (the real `ingress` and `worker` binaries) per round. Not part of CI
# (CI runs a few fixed rounds: tests/tests/faults_campaign.rs).
#
#   scripts/fault-campaign.sh                          # 50 rounds (about an hour on 2 cores)
#   scripts/fault-campaign.sh --rounds 5               # a short one
#   scripts/fault-campaign.sh --minutes 30             # as many rounds as fit in 30 minutes
#   scripts/fault-campaign.sh --seed 4711 --rounds 1   # replay one round exactly
#
# Other flags: --conversations N (40), --out DIR (default .campaign/<timestamp>: rounds.jsonl,
# summary.txt, and the logs of every process of a failing round). It runs under `nice` so it
# yields to other work on a shared machine. Exit status 0 when every round passed.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$(scripts/install-nats-server.sh)}"
echo "==> building the binaries (debug, as the tests use them)" >&2
cargo build --locked --bin ingress --bin worker --bin fault-campaign >&2

out=".campaign/$(date -u +%Y%m%dT%H%M%SZ)"
for arg in "$@"; do
    if [[ "$arg" == --out || "$arg" == --out=* ]]; then out=""; fi
done
args=("$@")
if [[ -n "$out" ]]; then args+=(--out "$out"); echo "==> figures and logs go to $out" >&2; fi
echo "==> machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2
exec nice -n 10 target/debug/fault-campaign "${args[@]}"
