#!/usr/bin/env bash
# How capacity grows with replicas: runs the pipeline (release processes, loopback) as
# N ingresses x M workers x S shards for each configuration given, drives it with saltedcx-sim
# the way Salted CX loads it (one HTTP connection per concurrent conversation, all opened at once,
# closed loop, growing turns), and prints one table: events/s, answer latency, deadline misses,
# lost events, ordering violations, and the CPU each kind of process used per answered event.
# Optionally the same load against the plain Python implementation (tests/bench/python/) in the
# same run, for comparison.
#
#   tests/bench/scale.sh                                  # 1x2x1 and 1x2x2 (2 cores)
#   SCALE_CONFIGS="1x2x1 1x4x1 1x8x1 2x8x2 4x8x4" tests/bench/scale.sh
#   SCALE_PYTHON=1 tests/bench/scale.sh                   # add the Python baseline row
#
# Settings (environment): SCALE_CONFIGS (ingresses x workers x shards, space-separated),
# SCALE_CONVERSATIONS (2000, space-separated for several), SCALE_DURATION (20s), SCALE_WARMUP
# (3s), SCALE_EVENT_SIZE (5120), PARTITIONS (64), SCALE_PYTHON (0), SCALE_PIN (auto: on with
# 4+ cores: the services on the first two thirds of the cores, the simulator on the rest).
# Results go to .bench/scale-<timestamp>/ (git-ignored); every step is bounded in time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${REPO}/.bench/scale-$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="${OUT}/run"
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
configs="${SCALE_CONFIGS:-1x2x1 1x2x2}"
conversation_counts="${SCALE_CONVERSATIONS:-2000}"
duration="${SCALE_DURATION:-20s}"
warmup="${SCALE_WARMUP:-3s}"
size="${SCALE_EVENT_SIZE:-5120}"
python="${SCALE_PYTHON:-0}"
cores="$(nproc)"
pin="${SCALE_PIN:-auto}"
[[ "$pin" == auto ]] && { if ((cores >= 4)); then pin=1; else pin=0; fi; }
service_cores="" sim_cores=""
if [[ "$pin" == 1 ]]; then
    split=$((cores * 2 / 3))
    service_cores="0-$((split - 1))"
    sim_cores="${split}-$((cores - 1))"
fi
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}" RUST_LOG="${RUST_LOG:-warn}"
export PARTITIONS="${PARTITIONS:-64}"
NATS_PORT=24522 SIM_PORT=28588 INGRESS_BASE=28500 ADMIN_BASE=28700 WORKER_BASE=29500
STACK_BIN_DIR="${STACK_BIN_DIR:-${REPO}/target/release}"

mkdir -p "$RUN_DIR"
if [[ -z "${SCALE_NO_BUILD:-}" ]]; then
    stack_log "building release binaries"
    (cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)
fi
sim="${STACK_BIN_DIR}/saltedcx-sim"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: ${cores} ($(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'))"
    echo "pinning: ${pin} (services ${service_cores:-any}, simulator ${sim_cores:-any})"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    echo "settings: configs='${configs}' conversations='${conversation_counts}' duration=${duration} event_size=${size} partitions=${PARTITIONS}"
} >"${OUT}/machine.txt"
cat "${OUT}/machine.txt" >&2
stack_trap

# pinned CORES: the command prefix that pins a process to CORES (nothing without pinning). Used
# unquoted before a command, so that the started process itself (taskset execs it) is the one
# whose pid and CPU are recorded.
pinned() {
    if [[ -n "$1" ]]; then echo "taskset -c $1"; fi
}
# shellcheck disable=SC2046 # $(pinned ...) is split into a command prefix on purpose

seconds() {
    case "$1" in *s) echo "${1%s}" ;; *m) echo $(("${1%m}" * 60)) ;; *) echo "$1" ;; esac
}

# start_rust INGRESSES WORKERS SHARDS: nats-server, the ingresses and the workers; sets URLS to
# the ingress URLs, comma-separated. (Not run in a subshell: the started processes must be
# known to stack_stop_all.)
start_rust() {
    local ingresses="$1" workers="$2" shards="$3" i urls=()
    local nats_bin
    nats_bin="$("${REPO}/scripts/install-nats-server.sh")"
    stack_start nats $(pinned "$service_cores") "$nats_bin" -js -sd "${RUN_DIR}/jetstream" -a 127.0.0.1 -p "$NATS_PORT"
    export NATS_URL="nats://127.0.0.1:${NATS_PORT}" SHARDS="$shards"
    for ((i = 1; i <= ingresses; i++)); do
        stack_start "ingress-$i" $(pinned "$service_cores") env INGRESS_ADDR="127.0.0.1:$((INGRESS_BASE + i))" \
            INGRESS_ADMIN_ADDR="127.0.0.1:$((ADMIN_BASE + i))" "${STACK_BIN_DIR}/ingress"
        urls+=("http://127.0.0.1:$((INGRESS_BASE + i))/v1/events")
    done
    for ((i = 1; i <= workers; i++)); do
        stack_start "worker-$i" $(pinned "$service_cores") env WORKER_ADDR="127.0.0.1:$((WORKER_BASE + i))" \
            SALTEDCX_API_URL="http://127.0.0.1:${SIM_PORT}" "${STACK_BIN_DIR}/worker"
    done
    for ((i = 1; i <= ingresses; i++)); do
        stack_wait_ready "ingress-$i" "http://127.0.0.1:$((ADMIN_BASE + i))/readyz" 60 >&2
    done
    for ((i = 1; i <= workers; i++)); do
        stack_wait_ready "worker-$i" "http://127.0.0.1:$((WORKER_BASE + i))/readyz" 60 >&2
    done
    URLS="$(IFS=,; echo "${urls[*]}")"
}

# start_python WORKERS: nats-server, the Python ingress and WORKERS Python workers; sets URLS.
start_python() {
    local workers="$1" i python
    local nats_bin
    nats_bin="$("${REPO}/scripts/install-nats-server.sh")"
    python="$(stack_python)"
    stack_start nats $(pinned "$service_cores") "$nats_bin" -js -sd "${RUN_DIR}/jetstream" -a 127.0.0.1 -p "$NATS_PORT"
    export NATS_URL="nats://127.0.0.1:${NATS_PORT}"
    sleep 1
    stack_start "ingress-1" $(pinned "$service_cores") env INGRESS_ADDR="127.0.0.1:$((INGRESS_BASE + 1))" \
        "$python" "${REPO}/tests/bench/python/ingress.py"
    for ((i = 1; i <= workers; i++)); do
        stack_start "worker-$i" $(pinned "$service_cores") env SALTEDCX_API_URL="http://127.0.0.1:${SIM_PORT}" \
            "$python" "${REPO}/tests/bench/python/worker.py"
    done
    for _ in $(seq 1 100); do stack_port_free "$((INGRESS_BASE + 1))" || break; sleep 0.2; done
    sleep 1
    URLS="http://127.0.0.1:$((INGRESS_BASE + 1))/v1/events"
}

echo "label,conversations,events_per_s,p50_ms,p99_ms,misses,lost,order,nats_us,ingress_us,workers_us,all_us" >"${OUT}/results.csv"

# run LABEL CONVERSATIONS URLS PROCESSES...: one closed-loop load; appends a line to results.csv.
run() {
    local label="$1" conversations="$2" urls="$3" limit
    shift 3
    local processes=("$@")
    stack_cpu_snapshot "${processes[@]}" >"${RUN_DIR}/cpu-before"
    limit=$(($(seconds "$duration") + 120))
    $(pinned "$sim_cores") timeout --signal=TERM "$limit" "$sim" load --listen "127.0.0.1:${SIM_PORT}" \
        --ingress-url "$urls" --conversations "$conversations" --duration "$duration" \
        --warmup "$warmup" --event-size "$size" --progress 0s \
        --report-json "${OUT}/${label}-${conversations}.json" >"${OUT}/${label}-${conversations}.txt" 2>&1 || true
    stack_cpu_snapshot "${processes[@]}" >"${RUN_DIR}/cpu-after"
    stack_cpu_delta "${RUN_DIR}/cpu-before" "${RUN_DIR}/cpu-after" >"${OUT}/${label}-${conversations}-cpu.csv"
    python3 - "$OUT" "$label" "$conversations" <<'PY'
import csv, json, sys
out, label, conversations = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    report = json.load(open(f"{out}/{label}-{conversations}.json"))
except (OSError, ValueError):
    print(f"{label}: no report (see {out}/{label}-{conversations}.txt)")
    sys.exit(0)
cpu = {"nats": 0.0, "ingress": 0.0, "worker": 0.0}
for row in csv.DictReader(open(f"{out}/{label}-{conversations}-cpu.csv")):
    kind = row["service"].split("-")[0]
    cpu[kind] = cpu.get(kind, 0.0) + float(row["cpu_s"])
answered = max(report["answered"], 1)  # CPU covers the warm-up too: divided by every answer
per = {k: v * 1e6 / answered for k, v in cpu.items()}
latency = report["latency"]
line = [label, conversations, f"{report['events_per_s']:.0f}", f"{latency['p50_ms']:.1f}",
        f"{latency['p99_ms']:.1f}", str(report["deadline_misses"]), str(report["lost"]),
        str(report["ordering_violations"]), f"{per['nats']:.0f}", f"{per['ingress']:.0f}",
        f"{per['worker']:.0f}", f"{sum(per.values()):.0f}"]
with open(f"{out}/results.csv", "a") as f:
    f.write(",".join(line) + "\n")
PY
}

for config in $configs; do
    IFS=x read -r ingresses workers shards <<<"$config"
    for conversations in $conversation_counts; do
        rm -rf "${RUN_DIR}/jetstream"
        stack_log "${ingresses} ingress(es) x ${workers} worker(s) x ${shards} shard(s), ${conversations} conversations"
        start_rust "$ingresses" "$workers" "$shards"
        processes=(nats)
        for ((i = 1; i <= ingresses; i++)); do processes+=("ingress-$i"); done
        for ((i = 1; i <= workers; i++)); do processes+=("worker-$i"); done
        run "rust-${config}" "$conversations" "$URLS" "${processes[@]}"
        stack_stop_all
    done
done
if [[ "$python" == 1 ]]; then
    for conversations in $conversation_counts; do
        rm -rf "${RUN_DIR}/jetstream"
        stack_log "the Python baseline: 1 ingress x 2 workers, ${conversations} conversations"
        start_python 2
        run "python-1x2x1" "$conversations" "$URLS" nats ingress-1 worker-1 worker-2
        stack_stop_all
    done
fi

python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/results.csv")))
head = ("run (ingresses x workers x shards)", "conv.", "events/s", "p50 ms", "p99 ms", "misses",
        "lost", "order", "CPU µs/event: nats", "ingress", "workers", "all")
keys = ("label", "conversations", "events_per_s", "p50_ms", "p99_ms", "misses", "lost", "order",
        "nats_us", "ingress_us", "workers_us", "all_us")
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
text = "\n".join(lines)
print(text)
open(f"{out}/summary.md", "w").write(text + "\n")
PY
stack_log "reports in ${OUT}"
