#!/usr/bin/env bash
# Before/after comparison on a noisy machine: builds the pipeline at REV (a git worktree under
# .bench/, its own target directory, kept for the next comparison) and the working tree, then
# runs the closed-loop load alternately against each (REV, current, REV, current, ...) with the
# same simulator, so that drifts in what the machine delivers hit both sides alike. Prints
# events/s and CPU per answered event of every process for each run, and the means.
#
#   tests/bench/compare.sh HEAD~1          # 3 runs each, 20 s closed loop, 2000 conversations
#   COMPARE_RUNS=5 tests/bench/compare.sh v0.1.0
#
# Settings (environment): COMPARE_RUNS (3), BENCH_DURATION (20s), BENCH_CONVERSATIONS (2000),
# BENCH_WARMUP (3s), PARTITIONS (64). Every run is bounded in time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rev="${1:?usage: tests/bench/compare.sh REV (try --help)}"
if [[ "$rev" == "-h" || "$rev" == "--help" ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
runs="${COMPARE_RUNS:-3}"
duration="${BENCH_DURATION:-20s}"
conversations="${BENCH_CONVERSATIONS:-2000}"
warmup="${BENCH_WARMUP:-3s}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}" RUST_LOG="${RUST_LOG:-warn}"
export PARTITIONS="${PARTITIONS:-64}"
OUT="${REPO}/.bench/compare-$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="${OUT}/run"
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"
mkdir -p "$RUN_DIR"

commit="$(cd "$REPO" && git rev-parse --verify "${rev}^{commit}")"
tree="${REPO}/.bench/compare-src"
stack_log "building ${rev} (${commit:0:9}) in ${tree}"
(cd "$REPO" && git worktree remove --force "$tree" 2>/dev/null || true)
(cd "$REPO" && git worktree prune && git worktree add --detach --force "$tree" "$commit" >/dev/null)
trap '(cd "$REPO" && git worktree remove --force "$tree" 2>/dev/null || true)' EXIT
(cd "$tree" && CARGO_TARGET_DIR="${REPO}/.bench/compare-target" \
    cargo build --release --locked -p ingress -p worker)
stack_log "building the working tree"
(cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)
stack_trap
trap 'stack_stop_all; (cd "$REPO" && git worktree remove --force "$tree" 2>/dev/null || true)' EXIT

# one LABEL BIN_DIR: one closed-loop run; appends a line to OUT/results.csv.
one() {
    local label="$1" bins="$2" limit
    rm -rf "${RUN_DIR}/jetstream"
    STACK_BIN_DIR="$bins" stack_start_pipeline 24722 28380 28388 29391 29392
    local services=(nats ingress worker-1 worker-2)
    stack_cpu_snapshot "${services[@]}" >"${RUN_DIR}/cpu-before"
    limit=$(($(seconds "$duration") + 120))
    timeout --signal=TERM "$limit" "${REPO}/target/release/saltedcx-sim" load \
        --listen 127.0.0.1:28388 --ingress-url http://127.0.0.1:28380/v1/events \
        --conversations "$conversations" --duration "$duration" --warmup "$warmup" \
        --report-json "${OUT}/${label}.json" >"${OUT}/${label}.txt" 2>"${OUT}/${label}.log"
    stack_cpu_snapshot "${services[@]}" >"${RUN_DIR}/cpu-after"
    stack_cpu_delta "${RUN_DIR}/cpu-before" "${RUN_DIR}/cpu-after" >"${OUT}/${label}-cpu.csv"
    stack_stop_all
    python3 - "$OUT" "$label" <<'PY'
import csv, json, sys
out, label = sys.argv[1], sys.argv[2]
report = json.load(open(f"{out}/{label}.json"))
cpu = {row["service"]: float(row["cpu_s"]) for row in csv.DictReader(open(f"{out}/{label}-cpu.csv"))}
cpu["worker"] = cpu.pop("worker-1") + cpu.pop("worker-2")
cpu["sim"] = report["sim_cpu_s"]
posts = max(report["posts"], 1)  # CPU covers the warm-up too: divide by every event sent
per = {k: v * 1e6 / posts for k, v in cpu.items()}
side = label.rsplit("-", 1)[0]
line = [side, f"{report['events_per_s']:.0f}"] + [f"{per[k]:.0f}" for k in ("nats", "ingress", "worker", "sim")]
line.append(f"{sum(per.values()):.0f}")
line += [str(report["lost"]), str(report["ordering_violations"]), str(report["deadline_misses"])]
with open(f"{out}/results.csv", "a") as f:
    f.write(",".join(line) + "\n")
print(f"{label:12} {line[1]:>6} events/s | CPU µs per event: nats {line[2]}, ingress {line[3]}, "
      f"workers {line[4]}, sim {line[5]}, all {line[6]} | lost {line[7]}, order {line[8]}, misses {line[9]}")
PY
}
seconds() {
    case "$1" in *s) echo "${1%s}" ;; *m) echo $(("${1%m}" * 60)) ;; *) echo "$1" ;; esac
}

echo "side,events_per_s,nats_us,ingress_us,workers_us,sim_us,all_us,lost,ordering,misses" >"${OUT}/results.csv"
for i in $(seq 1 "$runs"); do
    one "before-$i" "${REPO}/.bench/compare-target/release"
    one "after-$i" "${REPO}/target/release"
done
python3 - "$OUT" "$rev" <<'PY'
import csv, statistics, sys
out, rev = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{out}/results.csv")))
print(f"\nmeans over {len(rows) // 2} alternating runs (before = {rev}, after = working tree):")
for side in ("before", "after"):
    mine = [r for r in rows if r["side"] == side]
    mean = lambda key: statistics.mean(float(r[key]) for r in mine)
    print(f"  {side:6} {mean('events_per_s'):7.0f} events/s  CPU per event {mean('all_us'):4.0f} µs "
          f"(nats {mean('nats_us'):.0f}, ingress {mean('ingress_us'):.0f}, workers {mean('workers_us'):.0f}, "
          f"sim {mean('sim_us'):.0f})")
PY
stack_log "reports in ${OUT}"
