#!/usr/bin/env bash
# The pipeline benchmark, in one run on this machine (everything on loopback):
#
# 1. the whole pipeline as release processes (nats-server, 1 ingress, 2 workers with the
#    default playbook) driven by saltedcx-sim: closed loop (2000 conversations, as fast as answers
#    allow) and open loop (5000 events/s, then 1000 events/s), 3 KB events, 15 s budget, memory
#    (RSS) and CPU of each service recorded;
# 2. baselines with the same payloads: raw JetStream publish + consume (and the pipeline's
#    ordered-consumer shape without logic), and a trivial axum endpoint under the same HTTP load;
# 3. the summary with the ratios, written with every report to .bench/<timestamp>/.
#
#   tests/bench/run.sh                 # the standard run (about 3 minutes)
#   tests/bench/run.sh --soak 10m      # closed loop for 10 minutes: is memory flat? (not in CI)
#
# Settings (environment): BENCH_CONVERSATIONS (2000), BENCH_DURATION (30s), BENCH_RATE (5000),
# BENCH_EXTRA_RATES (further open-loop rates, "1000"; empty for none),
# BENCH_EVENT_SIZE (3072), BENCH_BASELINE_DURATION (10s), BENCH_WARMUP (3s), PARTITIONS (64).
# Every step is bounded in time. Measure on an otherwise quiet machine: the load average before
# the run is recorded in machine.txt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${REPO}/.bench/${stamp}"
RUN_DIR="${OUT}/run"
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"

soak=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --soak) soak="${2:?--soak needs a duration, e.g. 10m}"; shift 2 ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

conversations="${BENCH_CONVERSATIONS:-2000}"
duration="${BENCH_DURATION:-30s}"
rate="${BENCH_RATE:-5000}"
extra_rates="${BENCH_EXTRA_RATES-1000}"
size="${BENCH_EVENT_SIZE:-5120}"
baseline_duration="${BENCH_BASELINE_DURATION:-10s}"
warmup="${BENCH_WARMUP:-3s}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}"
export RUST_LOG="${RUST_LOG:-warn}"
export PARTITIONS="${PARTITIONS:-64}"
NATS_PORT=24222 INGRESS_PORT=28080 SIM_PORT=28088 HTTP_PORT=28099
WORKER_PORTS=(29091 29092)

mkdir -p "$RUN_DIR"
stack_log "building release binaries"
(cd "$REPO" && cargo build --release --locked \
    --bin ingress --bin worker --bin saltedcx-sim --bin bench-baselines)
sim="${REPO}/target/release/saltedcx-sim"
baselines="${REPO}/target/release/bench-baselines"

{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: $(nproc)"
    echo "cpu: $(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    echo "settings: conversations=${conversations} duration=${duration} rate=${rate} event_size=${size} partitions=${PARTITIONS} soak=${soak:-no}"
} >"${OUT}/machine.txt"
cat "${OUT}/machine.txt" >&2

stack_trap
# seconds SPEC: a duration like 30s / 10m / 1h in whole seconds.
seconds() {
    local spec="$1"
    case "$spec" in
        *ms) echo 1 ;;
        *s) echo "${spec%s}" ;;
        *m) echo $(("${spec%m}" * 60)) ;;
        *h) echo $(("${spec%h}" * 3600)) ;;
        *) echo "$spec" ;;
    esac
}

stack_log "phase 1: the pipeline (nats-server, ingress, 2 workers) driven by saltedcx-sim"
stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" "${WORKER_PORTS[@]}"
stack_sample_rss "${OUT}/rss.csv" nats ingress worker-1 worker-2 &
sampler=$!
load() {
    local name="$1" limit
    shift
    limit=$(($(seconds "$1") + 120))
    shift
    stack_log "saltedcx-sim load $* (report: ${OUT}/${name}.json)"
    timeout --signal=TERM "$limit" "$sim" load --listen "127.0.0.1:${SIM_PORT}" \
        --ingress-url "http://127.0.0.1:${INGRESS_PORT}/v1/events" --conversations "$conversations" \
        --event-size "$size" --warmup "$warmup" --progress 5s --report-json "${OUT}/${name}.json" \
        --time-limit "$((limit - 60))s" --worker-metrics "$(worker_metrics)" "$@" \
        | tee "${OUT}/${name}.txt"
}
services=(nats ingress worker-1 worker-2)
# The workers' metrics pages: the simulator tells events they counted as expired from lost ones.
worker_metrics() {
    local port urls=()
    for port in "${WORKER_PORTS[@]}"; do urls+=("http://127.0.0.1:${port}/metrics"); done
    (IFS=,; echo "${urls[*]}")
}
# phase NAME LOAD-ARGS...: one load run, with the CPU each service used in cpu-NAME.csv.
phase() {
    local name="$1"
    shift
    stack_cpu_snapshot "${services[@]}" >"${RUN_DIR}/cpu-before"
    load "$name" "$@"
    stack_cpu_snapshot "${services[@]}" >"${RUN_DIR}/cpu-after"
    stack_cpu_delta "${RUN_DIR}/cpu-before" "${RUN_DIR}/cpu-after" >"${OUT}/cpu-${name}.csv"
}
if [[ -n "$soak" ]]; then
    phase closed "$soak" --duration "$soak"
else
    phase closed "$duration" --duration "$duration"
fi
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
if [[ -z "$soak" ]]; then
    phase open "$duration" --duration "$duration" --rate "$rate"
    for extra in ${extra_rates}; do
        phase "open-${extra}" "$duration" --duration "$duration" --rate "$extra"
    done
fi
stack_stop_all

if [[ -z "$soak" ]]; then
    stack_log "phase 2: baselines"
    rm -rf "${RUN_DIR}/jetstream"
    nats_bin="$("${REPO}/scripts/install-nats-server.sh")"
    stack_start nats "$nats_bin" -js -sd "${RUN_DIR}/jetstream" -a 127.0.0.1 -p "$NATS_PORT"
    for _ in $(seq 1 50); do stack_port_free "$NATS_PORT" || break; sleep 0.2; done
    limit=$(($(seconds "$baseline_duration") + 60))
    for variant in raw ordered; do
        flag=()
        [[ "$variant" == ordered ]] && flag=(--ordered)
        timeout "$limit" "$baselines" jetstream --nats-url "nats://127.0.0.1:${NATS_PORT}" \
            --payload-size "$size" --duration "$baseline_duration" --in-flight "$conversations" \
            "${flag[@]}" --report-json "${OUT}/jetstream-${variant}.json"
    done
    stack_stop_all
    stack_start http "$baselines" http-serve --listen "127.0.0.1:${HTTP_PORT}"
    for _ in $(seq 1 50); do stack_port_free "$HTTP_PORT" || break; sleep 0.2; done
    timeout "$limit" "$baselines" http-load --url "http://127.0.0.1:${HTTP_PORT}/v1/events" \
        --concurrency "$conversations" --duration "$baseline_duration" --event-size "$size" \
        --report-json "${OUT}/http.json"
    stack_stop_all
fi

"$baselines" summarize "$OUT" | tee "${OUT}/summary.txt"
