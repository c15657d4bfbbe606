#!/usr/bin/env bash
# Where the time goes: runs the pipeline (release processes, as tests/bench/run.sh) under a
# closed-loop saltedcx-sim load while `perf record` samples every process of it (nats-server,
# ingress, the workers, the simulator), then writes per-process reports of the hottest functions
# (self time) to .bench/profile-<timestamp>/.
#
#   tests/bench/profile.sh                  # 20 s of closed loop, 2000 conversations
#   PROFILE_DURATION=30s tests/bench/profile.sh
#   PROFILE_CALLGRAPH=dwarf tests/bench/profile.sh   # with call graphs: time including callees
#
# Needs `perf` (Debian: linux-perf) and permission to profile (root, or
# kernel.perf_event_paranoid <= 1).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${REPO}/.bench/profile-$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="${OUT}/run"
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"
command -v perf >/dev/null || { echo "error: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

duration="${PROFILE_DURATION:-20s}"
callgraph="${PROFILE_CALLGRAPH:-}"
conversations="${BENCH_CONVERSATIONS:-2000}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}" RUST_LOG="${RUST_LOG:-warn}"
NATS_PORT=24422 INGRESS_PORT=28180 SIM_PORT=28188

mkdir -p "$RUN_DIR"
(cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)
stack_trap
stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" 29191 29192
stack_start sim "${REPO}/target/release/saltedcx-sim" load --listen "127.0.0.1:${SIM_PORT}" \
    --ingress-url "http://127.0.0.1:${INGRESS_PORT}/v1/events" --conversations "$conversations" \
    --duration "$duration" --progress 5s --report-json "${OUT}/closed.json"
sleep 2 # let the run reach its steady state before sampling
# One perf recording per process kind (tokio threads all have the same name, so a shared
# recording could not tell the processes apart); flat profiles: self time per function.
declare -A groups=([nats]="nats" [ingress]="ingress" [workers]="worker-1 worker-2" [sim]="sim")
recorders=()
for group in "${!groups[@]}"; do
    pids="$(for n in ${groups[$group]}; do stack_pid "$n"; done | paste -sd,)"
    perf record -F 999 ${callgraph:+--call-graph "${callgraph},16384"} -o "${OUT}/perf-${group}.data" \
        -p "$pids" -- sleep 10 \
        >"${OUT}/perf-record-${group}.log" 2>&1 &
    recorders+=($!)
done
stack_log "perf is sampling nats-server, the ingress, the workers and the simulator for 10 s"
wait "${recorders[@]}" || true
wait "$(stack_pid sim)" || true
cat "${RUN_DIR}/sim.log"
for group in "${!groups[@]}"; do
    if [[ -n "$callgraph" ]]; then
        perf report -i "${OUT}/perf-${group}.data" --children --sort symbol -g none --stdio \
            --percent-limit 1 2>/dev/null | grep -v '^$' | head -120 >"${OUT}/top-${group}.txt" || true
    else
        perf report -i "${OUT}/perf-${group}.data" --sort dso,symbol --stdio --percent-limit 0.5 \
            2>/dev/null | grep -v '^$' | head -60 >"${OUT}/top-${group}.txt" || true
    fi
    total="$(perf report -i "${OUT}/perf-${group}.data" --stdio --sort dso 2>/dev/null \
        | awk '/^# Samples:/ {print $3}' | head -1)"
    echo "${group}: ${total:-?} samples (at 999 Hz over 10 s: samples/9990 = cores busy)" >>"${OUT}/by-process.txt"
done
stack_log "reports in ${OUT}: by-process.txt, top-<group>.txt (perf report -i ${OUT}/perf-<group>.data for more)"
cat "${OUT}/by-process.txt"
