#!/usr/bin/env bash
# The cost of an event: the CPU time each process spends per answered event (nats-server, the
# ingress, the workers), for the pipeline at a git ref (before) and in the working tree (after),
# and for the plain Python pipeline of tests/bench/python/ (aiohttp + nats-py) in the same run,
# at two loads driven by saltedcx-sim (one HTTP connection per conversation, growing turns):
#
# - saturated: a closed loop (each conversation sends its next event as soon as the previous
#   one is answered);
# - paced: thousands of conversations at a fixed rate (open loop), so each conversation waits
#   a human think time between its events on average (3,000 conversations at 600 events/s:
#   5 s), the pace real conversations arrive at.
#
# The sides run alternately (python, before, after; per load; COST_RUNS rounds), so the
# drifts of a shared machine hit every side alike; CPU time (user + system, from /proc) counts,
# not wall time. Prints every run (with the 1-minute load average at its end) and, per load and
# side, the range over the rounds; writes results.csv and summary.md to .bench/cost-<timestamp>/.
#
#   tests/bench/cost.sh HEAD~3                 # before = HEAD~3, after = the working tree
#   COST_RUNS=3 COST_LOADS=paced tests/bench/cost.sh main
#   COST_BASELINE_BIN=DIR tests/bench/cost.sh  # before = the ingress and worker in DIR
#
# Settings (environment): COST_RUNS (2), COST_LOADS ("saturated paced"), COST_DURATION (20s),
# COST_SATURATED_CONVERSATIONS (1000), COST_PACED_CONVERSATIONS (3000), COST_PACED_RATE (600),
# COST_EVENT_SIZE (5120), COST_PYTHON (1; 0 leaves the Python pipeline out), PARTITIONS (64).
# The baseline is built with the working tree's target directory (only the workspace crates
# compile again) and its binaries kept in .bench/cost-bin-<commit>/. Every step is bounded.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
fi
rev="${1:-}"
runs="${COST_RUNS:-2}"
loads="${COST_LOADS:-saturated paced}"
duration="${COST_DURATION:-20s}"
saturated_conversations="${COST_SATURATED_CONVERSATIONS:-1000}"
paced_conversations="${COST_PACED_CONVERSATIONS:-3000}"
paced_rate="${COST_PACED_RATE:-600}"
size="${COST_EVENT_SIZE:-5120}"
python="${COST_PYTHON:-1}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}" RUST_LOG="${RUST_LOG:-warn}"
export PARTITIONS="${PARTITIONS:-64}"
OUT="${REPO}/.bench/cost-$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="${OUT}/run"
NATS_PORT=24822 INGRESS_PORT=28880 SIM_PORT=28888 WORKER_PORTS=(29891 29892)
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"
mkdir -p "$RUN_DIR"

# The baseline's binaries: given, or built from REV.
before="${COST_BASELINE_BIN:-}"
if [[ -z "$before" ]]; then
    [[ -n "$rev" ]] || { echo "usage: tests/bench/cost.sh REV (or COST_BASELINE_BIN=DIR); try --help" >&2; exit 2; }
    commit="$(cd "$REPO" && git rev-parse --verify "${rev}^{commit}")"
    before="${REPO}/.bench/cost-bin-${commit:0:12}"
    if [[ ! -x "${before}/worker" || ! -x "${before}/ingress" ]]; then
        tree="${REPO}/.bench/cost-src"
        stack_log "building ${rev} (${commit:0:9}) in ${tree}"
        # A plain export of the commit's files (no git worktree to register or clean up).
        rm -rf "$tree" && mkdir -p "$tree"
        (cd "$REPO" && git archive "$commit") | tar -x -C "$tree"
        (cd "$tree" && CARGO_TARGET_DIR="${REPO}/target" cargo build --release --locked -p ingress -p worker)
        mkdir -p "$before"
        cp "${REPO}/target/release/ingress" "${REPO}/target/release/worker" "$before/"
        rm -rf "$tree"
    fi
fi
stack_log "building the working tree"
(cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)
after="${REPO}/target/release"
if cmp -s "${before}/worker" "${after}/worker"; then
    stack_log "note: the baseline's worker is the same binary as the working tree's"
fi
sim="${after}/saltedcx-sim"

{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: $(nproc) ($(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'))"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "before: ${rev:-$before} ${commit:+(${commit:0:9})}"
    echo "after: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet || echo ' (uncommitted changes)')"
    echo "settings: loads='${loads}' runs=${runs} duration=${duration} saturated=${saturated_conversations} conversations, paced=${paced_conversations} conversations at ${paced_rate} events/s, event_size=${size}, partitions=${PARTITIONS}"
} >"${OUT}/machine.txt"
cat "${OUT}/machine.txt" >&2
stack_trap

seconds() {
    case "$1" in *s) echo "${1%s}" ;; *m) echo $(("${1%m}" * 60)) ;; *) echo "$1" ;; esac
}
# Latencies count from the end of the warm-up: 3 s, or a third of shorter runs.
warmup=$(($(seconds "$duration") / 3))
if ((warmup > 3)); then warmup=3; fi

# start SIDE: the pipeline of SIDE (python, before, after).
start() {
    rm -rf "${RUN_DIR}/jetstream"
    case "$1" in
        python) stack_start_python_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" 2 ;;
        before) STACK_BIN_DIR="$before" stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" "${WORKER_PORTS[@]}" ;;
        after) STACK_BIN_DIR="$after" stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" "${WORKER_PORTS[@]}" ;;
    esac
}

# one LOAD SIDE ROUND: one load run; appends a line to OUT/results.csv.
one() {
    local load="$1" side="$2" round="$3" label="$1-$2-$3" limit args=()
    case "$load" in
        saturated) args=(--conversations "$saturated_conversations") ;;
        paced) args=(--conversations "$paced_conversations" --rate "$paced_rate" --ramp-up 5s) ;;
    esac
    start "$side"
    local processes=(nats ingress worker-1 worker-2)
    stack_cpu_snapshot "${processes[@]}" >"${RUN_DIR}/cpu-before"
    limit=$(($(seconds "$duration") + 120))
    timeout --signal=TERM "$limit" "$sim" load --listen "127.0.0.1:${SIM_PORT}" \
        --ingress-url "http://127.0.0.1:${INGRESS_PORT}/v1/events" "${args[@]}" \
        --duration "$duration" --warmup "${warmup}s" --event-size "$size" --progress 0s \
        --time-limit "$((limit - 60))s" --report-json "${OUT}/${label}.json" \
        >"${OUT}/${label}.txt" 2>&1 || true
    stack_cpu_snapshot "${processes[@]}" >"${RUN_DIR}/cpu-after"
    # The machine's 1-minute load average at the end of the run (other work on a shared host).
    cut -d' ' -f1 /proc/loadavg >"${OUT}/${label}-load.txt"
    stack_cpu_delta "${RUN_DIR}/cpu-before" "${RUN_DIR}/cpu-after" >"${OUT}/${label}-cpu.csv"
    stack_stop_all
    python3 - "$OUT" "$load" "$side" "$round" <<'PY'
import csv, json, sys
out, load, side, round_ = sys.argv[1:5]
label = f"{load}-{side}-{round_}"
try:
    report = json.load(open(f"{out}/{label}.json"))
except (OSError, ValueError):
    print(f"{label}: no report (see {out}/{label}.txt)")
    sys.exit(0)
cpu = {"nats": 0.0, "ingress": 0.0, "worker": 0.0}
for row in csv.DictReader(open(f"{out}/{label}-cpu.csv")):
    cpu[row["service"].split("-")[0]] += float(row["cpu_s"])
answered = max(report["answered"], 1)  # the CPU covers the warm-up too: divided by every answer
per = {k: v * 1e6 / answered for k, v in cpu.items()}
latency = report["latency"]
line = [load, side, round_, f"{report['events_per_s']:.0f}", f"{latency['p50_ms']:.1f}",
        f"{latency['p99_ms']:.1f}", str(report["deadline_misses"]), str(report["lost"]),
        f"{per['nats']:.0f}", f"{per['ingress']:.0f}", f"{per['worker']:.0f}",
        f"{sum(per.values()):.0f}", open(f"{out}/{label}-load.txt").read().strip()]
with open(f"{out}/results.csv", "a") as f:
    f.write(",".join(line) + "\n")
print(f"{label:22} {line[3]:>6} events/s, p99 {line[5]:>7} ms, misses {line[6]}, lost {line[7]} | "
      f"CPU µs per event: nats {line[8]}, ingress {line[9]}, workers {line[10]}, all {line[11]} "
      f"| load average {line[12]}")
PY
}

echo "load,side,round,events_per_s,p50_ms,p99_ms,misses,lost,nats_us,ingress_us,workers_us,all_us,load_avg" >"${OUT}/results.csv"
sides=(before after)
[[ "$python" == 1 ]] && sides=(python before after)
for round in $(seq 1 "$runs"); do
    for load in $loads; do
        for side in "${sides[@]}"; do
            stack_log "round ${round}/${runs}: ${load}, ${side}"
            one "$load" "$side" "$round"
        done
    done
done

python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/results.csv")))
keys = ("events_per_s", "p99_ms", "misses", "nats_us", "ingress_us", "workers_us", "all_us",
        "load_avg")
head = ("load", "side", "events/s", "p99 ms", "misses", "CPU µs/event: nats", "ingress",
        "workers", "all", "load average", "all vs Python")
lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
def span(values):
    low, high = min(values), max(values)
    whole = all(v == int(v) for v in values)
    fmt = (lambda v: f"{v:.0f}") if whole or high >= 10 else (lambda v: f"{v:.1f}")
    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)}–{fmt(high)}"
for load in dict.fromkeys(r["load"] for r in rows):
    python = [float(r["all_us"]) for r in rows if r["load"] == load and r["side"] == "python"]
    for side in dict.fromkeys(r["side"] for r in rows if r["load"] == load):
        mine = [r for r in rows if r["load"] == load and r["side"] == side]
        cells = [span([float(r[k]) for r in mine]) for k in keys]
        if python and side != "python":
            ratios = [float(r["all_us"]) / p for r in mine for p in python]
            low, high = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
            cells.append(low if low == high else f"{low}–{high}")
        else:
            cells.append("")
        lines.append("| " + " | ".join([load, side] + cells) + " |")
text = "\n".join(lines)
print()
print(text)
open(f"{out}/summary.md", "w").write(text + "\n")
PY
stack_log "reports in ${OUT} (summary.md, results.csv, one report per run)"
