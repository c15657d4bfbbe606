#!/usr/bin/env bash
# Soak: the whole pipeline as release processes (nats-server, the ingress, two workers) under
# steady open-loop load from `saltedcx-sim load` for SOAK_DURATION, with a worker killed
# (kill -9) and restarted every SOAK_CHAOS_EVERY. Records the memory (RSS) of every process each
# second and the end-to-end latency per window (from the workers' histograms), and checks with
# the simulator that no accepted event was lost or answered out of order. Not part of CI.
#
#   scripts/soak.sh                       # 10 minutes, 200 events/s, a worker killed every 2 min
#   SOAK_DURATION=2m scripts/soak.sh      # a short run
#   SOAK_CHAOS_EVERY=0 scripts/soak.sh    # no kills: a plain soak
#
# Settings: SOAK_DURATION (10m), SOAK_RATE (200 events/s), SOAK_CONVERSATIONS (400),
# SOAK_BUDGET (15s), SOAK_EVENT_SIZE (3072), SOAK_CHAOS_EVERY (2m; 0: never), SOAK_WINDOW (30,
# seconds per latency window). Ports: SOAK_NATS_PORT (34222), SOAK_INGRESS_PORT (38080),
# SOAK_SIM_PORT (38088), SOAK_WORKER_PORTS ("39091 39092"). Results go to .soak/<timestamp>/:
# report.json (simulator), rss.csv, latency.csv, chaos.log, summary.txt, the process logs.
# Exit status: 0 when nothing was lost or reordered.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${REPO}/.soak/${stamp}"
RUN_DIR="${OUT}"
# shellcheck source=lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"

case "${1:-}" in
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

duration="${SOAK_DURATION:-10m}"
rate="${SOAK_RATE:-200}"
conversations="${SOAK_CONVERSATIONS:-400}"
budget="${SOAK_BUDGET:-15s}"
size="${SOAK_EVENT_SIZE:-3072}"
chaos_every="${SOAK_CHAOS_EVERY:-2m}"
window="${SOAK_WINDOW:-30}"
nats_port="${SOAK_NATS_PORT:-34222}"
ingress_port="${SOAK_INGRESS_PORT:-38080}"
sim_port="${SOAK_SIM_PORT:-38088}"
read -r -a worker_ports <<<"${SOAK_WORKER_PORTS:-39091 39092}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-soak-token}"
export RUST_LOG="${RUST_LOG:-warn}"

# seconds SPEC: 30s / 10m / 1h as whole seconds.
seconds() {
    case "$1" in
        *s) echo "${1%s}" ;;
        *m) echo $(("${1%m}" * 60)) ;;
        *h) echo $(("${1%h}" * 3600)) ;;
        *) echo "$1" ;;
    esac
}

mkdir -p "$OUT"
stack_log "building the release binaries"
(cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)
{
    echo "date: $(date -u +%FT%TZ)  cpus: $(nproc)  load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    echo "settings: duration=${duration} rate=${rate}/s conversations=${conversations} budget=${budget} event_size=${size} chaos_every=${chaos_every}"
} | tee "${OUT}/machine.txt" >&2

# Cleanup on any exit: the chaos loop restarts workers in a subshell, so besides the processes
# this shell knows, stop every process with a pid file in this run's (fresh) directory.
rss_sampler="" latency_sampler="" chaos_pid=""
cleanup() {
    local pid
    for pid in "$chaos_pid" "$rss_sampler" "$latency_sampler"; do
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    done
    stack_stop_stale
    stack_stop_all
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stack_require_ports "$sim_port"
stack_start_pipeline "$nats_port" "$ingress_port" "$sim_port" "${worker_ports[@]}"
stack_log "pipeline up; results and logs in ${OUT}"

# Memory every second, latency histograms every window.
stack_sample_rss "${OUT}/rss.csv" nats ingress worker-1 worker-2 &
rss_sampler=$!
worker_urls=()
for port in "${worker_ports[@]}"; do worker_urls+=("http://127.0.0.1:${port}"); done
python3 "${REPO}/scripts/lib/soak.py" sample "${OUT}/latency.csv" "$window" "${worker_urls[@]}" &
latency_sampler=$!

# Chaos: kill -9 a worker (alternately), restart it at once, wait until it is ready.
chaos() {
    local every n=0 i port
    every="$(seconds "$chaos_every")"
    while true; do
        sleep "$every"
        n=$((n + 1))
        i=$(((n - 1) % ${#worker_ports[@]} + 1))
        port="${worker_ports[$((i - 1))]}"
        kill -KILL "$(stack_pid "worker-$i")" 2>/dev/null || true
        echo "$(date -u +%T) kill -9 worker-$i" >>"${OUT}/chaos.log"
        stack_start "worker-$i" env WORKER_ADDR="127.0.0.1:${port}" \
            SALTEDCX_API_URL="http://127.0.0.1:${sim_port}" "${REPO}/target/release/worker"
        stack_wait_ready "worker-$i" "http://127.0.0.1:${port}/readyz" 60 || true
        echo "$(date -u +%T) worker-$i ready again" >>"${OUT}/chaos.log"
    done
}
if [[ "$(seconds "$chaos_every")" -gt 0 ]]; then
    chaos &
    chaos_pid=$!
fi

stack_log "load: ${rate} events/s over ${conversations} conversations for ${duration}"
limit=$(($(seconds "$duration") + 300))
status=0
timeout --signal=TERM "$limit" "${REPO}/target/release/saltedcx-sim" load \
    --listen "127.0.0.1:${sim_port}" --ingress-url "http://127.0.0.1:${ingress_port}/v1/events" \
    --conversations "$conversations" --rate "$rate" --duration "$duration" --budget "$budget" \
    --event-size "$size" --progress 30s --drain 20s --report-json "${OUT}/report.json" \
    2> >(tee "${OUT}/sim.log" >&2) || status=$?

cleanup
if [[ ! -f "${OUT}/report.json" ]]; then
    echo "error: the simulator wrote no report (exit status ${status}); see ${OUT}/sim.log" >&2
    exit 1
fi
python3 "${REPO}/scripts/lib/soak.py" summary "$OUT"
