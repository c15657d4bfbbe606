#!/usr/bin/env bash
# Where the time goes: a flame graph of each service under the simulator's load.
#
# Builds the pipeline with the `profiling` profile (release code plus frame pointers, into
# target/profiling/), runs it as processes (nats-server, the ingress, two workers) under a
# saltedcx-sim load, samples each kind of process with `perf record --call-graph fp` (whole call
# stacks at little cost; nats-server is Go, which keeps frame pointers too), and writes to
# .bench/profile-<timestamp>/:
#
# - flame-<group>.svg: the flame graph (inferno) of nats, ingress, workers, sim;
# - top-<group>.txt: the hottest functions, with their callees (children) and alone (self);
# - by-process.txt: samples per group (at 999 Hz, samples / (999 x seconds) = cores busy).
#
#   tests/bench/profile.sh                               # closed loop, 1000 conversations
#   PROFILE_RATE=600 BENCH_CONVERSATIONS=3000 tests/bench/profile.sh    # paced: 600 events/s
#   PROFILE_NO_BUILD=1 tests/bench/profile.sh            # reuse target/profiling/
#   PROFILE_BIN_DIR=target/release PROFILE_CALLGRAPH=dwarf tests/bench/profile.sh
#                                                        # release binaries (no frame pointers)
#
# Settings (environment): BENCH_CONVERSATIONS (1000), PROFILE_DURATION (25s: the load; perf
# samples PROFILE_SECONDS, 10, from 5 s in), PROFILE_RATE (unset: closed loop), PARTITIONS (64),
# PROFILE_CALLGRAPH (fp; dwarf for binaries without frame pointers), PROFILE_BIN_DIR (binaries
# to profile instead of building target/profiling/).
# Needs perf (installed from Debian by scripts/install-profiling-tools.sh, with the pinned
# inferno) and permission to profile (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${REPO}/.bench/profile-$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="${OUT}/run"
# shellcheck source=../../scripts/lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
fi
duration="${PROFILE_DURATION:-25s}"
seconds="${PROFILE_SECONDS:-10}"
rate="${PROFILE_RATE:-}"
conversations="${BENCH_CONVERSATIONS:-1000}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-bench-token}" RUST_LOG="${RUST_LOG:-warn}"
export PARTITIONS="${PARTITIONS:-64}"
NATS_PORT=24422 INGRESS_PORT=28180 SIM_PORT=28188

mkdir -p "$RUN_DIR"
flame_tools="$("${REPO}/scripts/install-profiling-tools.sh")"
callgraph="${PROFILE_CALLGRAPH:-fp}"
[[ "$callgraph" == dwarf ]] && callgraph="dwarf,16384"
export STACK_BIN_DIR="${PROFILE_BIN_DIR:-${REPO}/target/profiling}"
if [[ -z "${PROFILE_NO_BUILD:-}" && -z "${PROFILE_BIN_DIR:-}" ]]; then
    stack_log "building the profiling binaries (release code with frame pointers)"
    (cd "$REPO" && RUSTFLAGS="${RUSTFLAGS:-} -C force-frame-pointers=yes" \
        cargo build --profile profiling --locked -p ingress -p worker -p saltedcx-sim)
fi
{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpus: $(nproc) ($(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'))"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "git: $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet || echo ' (uncommitted changes)')"
    echo "load: ${conversations} conversations, $([[ -n "$rate" ]] && echo "open loop at ${rate} events/s" || echo "closed loop"), sampled ${seconds} s"
} >"${OUT}/machine.txt"
cat "${OUT}/machine.txt" >&2

stack_trap
stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" 29191 29192
stack_start sim "${STACK_BIN_DIR}/saltedcx-sim" load --listen "127.0.0.1:${SIM_PORT}" \
    --ingress-url "http://127.0.0.1:${INGRESS_PORT}/v1/events" --conversations "$conversations" \
    --duration "$duration" ${rate:+--rate "$rate"} --progress 5s --report-json "${OUT}/load.json"
sleep 5 # let the run reach its steady state before sampling
# One recording per kind of process (tokio threads all have the same names, so a shared
# recording could not tell the processes apart).
declare -A groups=([nats]="nats" [ingress]="ingress" [workers]="worker-1 worker-2" [sim]="sim")
recorders=()
for group in "${!groups[@]}"; do
    pids="$(for n in ${groups[$group]}; do stack_pid "$n"; done | paste -sd,)"
    perf record -F 999 --call-graph "$callgraph" -o "${OUT}/perf-${group}.data" -p "$pids" -- sleep "$seconds" \
        >"${OUT}/perf-record-${group}.log" 2>&1 &
    recorders+=($!)
done
stack_log "perf is sampling nats-server, the ingress, the workers and the simulator for ${seconds} s"
wait "${recorders[@]}" || true
wait "$(stack_pid sim)" || true
cat "${RUN_DIR}/sim.log" >&2
: >"${OUT}/by-process.txt"
for group in "${!groups[@]}"; do
    data="${OUT}/perf-${group}.data"
    perf script -i "$data" 2>/dev/null | "${flame_tools}/inferno-collapse-perf" >"${OUT}/stacks-${group}.txt" || true
    "${flame_tools}/inferno-flamegraph" --title "${group} ($(sed -n 5p "${OUT}/machine.txt"))" \
        <"${OUT}/stacks-${group}.txt" >"${OUT}/flame-${group}.svg" 2>/dev/null || true
    {
        echo "## with callees (children)"
        # awk reads to the end (head would stop perf with SIGPIPE, a failure under pipefail).
        perf report -i "$data" --children --sort symbol -g none --stdio --percent-limit 2 2>/dev/null |
            awk 'NF && !/^#/ && n++ < 60'
        echo "## alone (self)"
        perf report -i "$data" --no-children --sort dso,symbol -g none --stdio --percent-limit 0.5 2>/dev/null |
            awk 'NF && !/^#/ && n++ < 60'
    } >"${OUT}/top-${group}.txt"
    # The exact count (the header of perf report rounds it to "1K"): samples per command.
    total="$(perf report -i "$data" --no-children --stdio -n --sort comm -g none 2>/dev/null |
        awk '!/^#/ && NF >= 3 { n += $2 } END { print n + 0 }')"
    echo "${group}: ${total:-?} samples (at 999 Hz over ${seconds} s: samples / $((999 * seconds)) = cores busy)" >>"${OUT}/by-process.txt"
done
stack_log "reports in ${OUT}: flame-<group>.svg, top-<group>.txt, by-process.txt"
cat "${OUT}/by-process.txt"
