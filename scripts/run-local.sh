#!/usr/bin/env bash
# Runs the whole pipeline on this machine and shows it working, without a Salted CX account:
# nats-server with JetStream, the ingress (events :8080, health and metrics :9091), two workers
# (health and metrics :9090 and :9092) answering to saltedcx-sim (:8088), then
# `saltedcx-sim demo` plays a few conversations and prints their transcripts. Afterwards the
# stack stays up, so you can send events yourself with `saltedcx-sim send` (the commands are
# printed; it shows the answer each event got). Ctrl-C stops everything.
#
#   scripts/run-local.sh                             # demo, then keep the stack running
#   scripts/run-local.sh --once                      # demo, then stop (exit 0: all answered)
#   PLAYBOOK=my-playbook.toml scripts/run-local.sh   # the workers answer with your playbook
#
# The workers read every worker setting from the environment (PLAYBOOK, LOGIC, LOGIC_URL, ...;
# see the README). Idempotent: builds what is missing (release), installs the pinned nats-server
# into .tools/, stops leftovers of an earlier run. Logs and the JetStream store are in
# .tools/run/ (printed). Ports and token can be changed with NATS_PORT, INGRESS_PORT,
# INGRESS_ADMIN_PORT (9091, the ingress's default), SIM_PORT, WORKER_PORTS ("9090 9092": the
# first is the worker's default, the second worker takes the next free one) and SALTEDCX_TOKEN.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${RUN_DIR:-${REPO}/.tools/run}"
# shellcheck source=lib/stack.sh
source "${REPO}/scripts/lib/stack.sh"

once=false
for arg in "$@"; do
    case "$arg" in
        --once) once=true ;;
        -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

NATS_PORT="${NATS_PORT:-4222}"
INGRESS_PORT="${INGRESS_PORT:-8080}"
export INGRESS_ADMIN_PORT="${INGRESS_ADMIN_PORT:-9091}"
SIM_PORT="${SIM_PORT:-8088}"
read -r -a worker_ports <<<"${WORKER_PORTS:-9090 9092}"
export SALTEDCX_TOKEN="${SALTEDCX_TOKEN:-local-dev-token}"
export RUST_LOG="${RUST_LOG:-info}"

mkdir -p "$RUN_DIR"
stack_stop_stale
rm -rf "${RUN_DIR}/jetstream"

stack_log "building the release binaries (ingress, worker, saltedcx-sim)"
(cd "$REPO" && cargo build --release --locked -p ingress -p worker -p saltedcx-sim)

stack_trap
stack_require_ports "$SIM_PORT"
stack_log "starting nats-server (:${NATS_PORT}), ingress (:${INGRESS_PORT}, admin :${INGRESS_ADMIN_PORT}), workers (:${worker_ports[*]}) with LOGIC=${LOGIC:-playbook}, PLAYBOOK=${PLAYBOOK:-(the built-in one)}"
stack_start_pipeline "$NATS_PORT" "$INGRESS_PORT" "$SIM_PORT" "${worker_ports[@]}"
stack_log "logs: ${RUN_DIR}/{nats,ingress,worker-1,worker-2}.log"

sim="${REPO}/target/release/saltedcx-sim"
ingress_url="http://127.0.0.1:${INGRESS_PORT}/v1/events"
stack_log "playing the demo conversations"
status=0
"$sim" demo --listen "127.0.0.1:${SIM_PORT}" --ingress-url "$ingress_url" || status=$?
if $once; then
    exit "$status"
fi

worker_metrics=""
for port in "${worker_ports[@]}"; do
    worker_metrics+=" http://127.0.0.1:${port}/metrics"
done
cat <<SEND

The stack keeps running. Send events from another terminal, in ${REPO}: a message typed on the
command line, or the example of every trigger type in examples/events/ (see its README.md);
each event's answer is printed.

  target/release/saltedcx-sim send --listen 127.0.0.1:${SIM_PORT} --ingress-url ${ingress_url} \\
    --text "Where is my order?"
  target/release/saltedcx-sim send --listen 127.0.0.1:${SIM_PORT} --ingress-url ${ingress_url} \\
    examples/events/*.json

(saltedcx-sim uses SALTEDCX_TOKEN like this stack: local-dev-token unless you set it.)
Metrics: ingress http://127.0.0.1:${INGRESS_ADMIN_PORT}/metrics, workers${worker_metrics}.
Ctrl-C stops everything.

SEND
# Until Ctrl-C (the traps stop every process) or until every service has exited.
wait
