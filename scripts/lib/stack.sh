# Shell helpers to run the pipeline locally as processes (sourced by scripts/run-local.sh and
# tests/bench/run.sh): start nats-server with JetStream, the ingress and workers from the release
# build, wait until they are ready, sample their memory, and stop everything on exit.
#
# The caller sets REPO (repository root) and RUN_DIR (logs, pid files, JetStream store) and
# calls `stack_trap` once, so every process started here is stopped on exit or Ctrl-C.
# STACK_BIN_DIR (default REPO/target/release) is where the ingress and worker binaries are.

STACK_PIDS=()
STACK_NAMES=()

# stack_log MESSAGE: prints a progress message on stderr.
stack_log() {
    if [[ -t 2 ]]; then printf '\033[1m==>\033[0m %s\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

# stack_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
stack_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stack_require_ports PORT...: fails with a clear message when a port is taken.
stack_require_ports() {
    local port
    for port in "$@"; do
        if ! stack_port_free "$port"; then
            echo "error: port $port on 127.0.0.1 is already in use (another run still going?)." >&2
            echo "       Stop it, or choose other ports with the environment variables in $0." >&2
            return 1
        fi
    done
}

# stack_start NAME COMMAND...: starts COMMAND in the background, output in RUN_DIR/NAME.log,
# pid in RUN_DIR/NAME.pid. Prints nothing; `stack_pid NAME` gives the pid.
stack_start() {
    local name="$1"
    shift
    "$@" >"${RUN_DIR}/${name}.log" 2>&1 &
    local pid=$!
    echo "$pid" >"${RUN_DIR}/${name}.pid"
    STACK_PIDS+=("$pid")
    STACK_NAMES+=("$name")
}

# stack_pid NAME: the pid of a started process.
stack_pid() { cat "${RUN_DIR}/$1.pid"; }

# stack_stop_stale: stops processes left over by an earlier run of the same RUN_DIR.
stack_stop_stale() {
    local file pid
    for file in "${RUN_DIR}"/*.pid; do
        [[ -e "$file" ]] || continue
        pid="$(cat "$file" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            stack_log "stopping $(basename "$file" .pid) left over from an earlier run (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    done
}

# stack_stop_all: SIGTERM to every started process (newest first), SIGKILL after 15 s.
stack_stop_all() {
    local i pid
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${STACK_PIDS[$i]}"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${STACK_PIDS[$i]}"
        for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -f "${RUN_DIR}/${STACK_NAMES[$i]}.pid"
    done
    STACK_PIDS=()
    STACK_NAMES=()
}

# stack_trap: stop everything on exit, Ctrl-C or SIGTERM.
stack_trap() {
    trap 'stack_stop_all' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# stack_wait_ready NAME URL [SECONDS]: polls URL (via the ingress's healthcheck subcommand, so
# curl is not needed) until it answers 200; fails with the service's log otherwise.
stack_wait_ready() {
    local name="$1" url="$2" timeout="${3:-30}" pid
    pid="$(stack_pid "$name")"
    for _ in $(seq 1 $((timeout * 5))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: $name exited; its log (${RUN_DIR}/${name}.log) ends with:" >&2
            tail -n 20 "${RUN_DIR}/${name}.log" >&2
            return 1
        fi
        if "${STACK_BIN_DIR:-${REPO}/target/release}/ingress" healthcheck --url "$url" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "error: $name not ready at $url within ${timeout}s; its log (${RUN_DIR}/${name}.log) ends with:" >&2
    tail -n 20 "${RUN_DIR}/${name}.log" >&2
    return 1
}

# stack_start_pipeline NATS_PORT INGRESS_PORT SIM_PORT WORKER_PORT...: nats-server with
# JetStream (store in RUN_DIR/jetstream), the ingress (events on INGRESS_PORT, health and metrics
# on INGRESS_ADMIN_PORT, by default the next port) and one worker per WORKER_PORT (health and
# metrics port), the workers answering to the simulator at 127.0.0.1:SIM_PORT. Waits until all
# are ready. Uses SALTEDCX_TOKEN from the environment.
stack_start_pipeline() {
    local nats_port="$1" ingress_port="$2" sim_port="$3"
    shift 3
    local admin_port="${INGRESS_ADMIN_PORT:-$((ingress_port + 1))}"
    local nats_bin
    nats_bin="$("${REPO}/scripts/install-nats-server.sh")"
    stack_require_ports "$nats_port" "$ingress_port" "$admin_port" "$@"
    stack_start nats "$nats_bin" -js -sd "${RUN_DIR}/jetstream" -a 127.0.0.1 -p "$nats_port"
    export NATS_URL="nats://127.0.0.1:${nats_port}"
    stack_start ingress env INGRESS_ADDR="127.0.0.1:${ingress_port}" INGRESS_ADMIN_ADDR="127.0.0.1:${admin_port}" \
        "${STACK_BIN_DIR:-${REPO}/target/release}/ingress"
    local i=0 port
    for port in "$@"; do
        i=$((i + 1))
        stack_start "worker-$i" env WORKER_ADDR="127.0.0.1:${port}" \
            SALTEDCX_API_URL="http://127.0.0.1:${sim_port}" "${STACK_BIN_DIR:-${REPO}/target/release}/worker"
    done
    stack_wait_ready ingress "http://127.0.0.1:${admin_port}/readyz" 60
    i=0
    for port in "$@"; do
        i=$((i + 1))
        stack_wait_ready "worker-$i" "http://127.0.0.1:${port}/readyz" 60
    done
}

# stack_sample_rss OUT_CSV NAME...: appends `elapsed_s,service,rss_kib` for the named processes
# every second until killed (run it in the background).
stack_sample_rss() {
    local out="$1" start name pid rss
    shift
    start="$(date +%s.%N)"
    echo "elapsed_s,service,rss_kib" >"$out"
    while true; do
        for name in "$@"; do
            pid="$(stack_pid "$name" 2>/dev/null || true)"
            rss="$(awk '/^VmRSS:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || true)"
            if [[ -n "$rss" ]]; then
                awk -v now="$(date +%s.%N)" -v start="$start" -v name="$name" -v rss="$rss" \
                    'BEGIN { printf "%.1f,%s,%s\n", now - start, name, rss }' >>"$out"
            fi
        done
        sleep 1
    done
}

# stack_cpu_seconds NAME: CPU seconds (user + system) a started process has used so far.
stack_cpu_seconds() {
    local pid
    pid="$(stack_pid "$1")"
    awk '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / 100 }' "/proc/${pid}/stat" 2>/dev/null || echo 0
}

# stack_cpu_snapshot NAME...: `name,cpu_seconds` lines for the named processes.
stack_cpu_snapshot() {
    local name
    for name in "$@"; do echo "${name},$(stack_cpu_seconds "$name")"; done
}

# stack_cpu_delta BEFORE AFTER: `service,cpu_s` lines with the CPU used between two snapshots.
stack_cpu_delta() {
    echo "service,cpu_s"
    awk -F, 'NR == FNR { before[$1] = $2; next } { printf "%s,%.2f\n", $1, $2 - before[$1] }' "$1" "$2"
}

# stack_python: the interpreter of the plain Python pipeline (tests/bench/python/), with its
# pinned packages installed into REPO/.tools/bench-python when missing. Prints its path.
stack_python() {
    local venv="${REPO}/.tools/bench-python"
    if [[ ! -x "${venv}/bin/python" ]] || ! "${venv}/bin/python" -c 'import aiohttp, nats' 2>/dev/null; then
        stack_log "installing the Python baseline's packages into ${venv}"
        python3 -m venv "$venv" >&2
        "${venv}/bin/pip" install --quiet --disable-pip-version-check \
            -r "${REPO}/tests/bench/python/requirements.txt" >&2
    fi
    echo "${venv}/bin/python"
}

# stack_start_python_pipeline NATS_PORT INGRESS_PORT SIM_PORT WORKERS: nats-server with
# JetStream (store in RUN_DIR/jetstream), the Python ingress on INGRESS_PORT and WORKERS Python
# workers answering to 127.0.0.1:SIM_PORT, named like the Rust pipeline's processes (nats,
# ingress, worker-1, ...). Waits until the ingress listens.
stack_start_python_pipeline() {
    local nats_port="$1" ingress_port="$2" sim_port="$3" workers="$4" python nats_bin i
    python="$(stack_python)"
    nats_bin="$("${REPO}/scripts/install-nats-server.sh")"
    stack_require_ports "$nats_port" "$ingress_port"
    stack_start nats "$nats_bin" -js -sd "${RUN_DIR}/jetstream" -a 127.0.0.1 -p "$nats_port"
    for _ in $(seq 1 50); do stack_port_free "$nats_port" || break; sleep 0.2; done
    export NATS_URL="nats://127.0.0.1:${nats_port}"
    stack_start ingress env INGRESS_ADDR="127.0.0.1:${ingress_port}" "$python" "${REPO}/tests/bench/python/ingress.py"
    for ((i = 1; i <= workers; i++)); do
        stack_start "worker-$i" env SALTEDCX_API_URL="http://127.0.0.1:${sim_port}" \
            "$python" "${REPO}/tests/bench/python/worker.py"
    done
    for _ in $(seq 1 100); do stack_port_free "$ingress_port" || break; sleep 0.2; done
    # The workers create the stream and their consumer on start.
    sleep 1
}
