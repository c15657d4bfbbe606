#!/usr/bin/env bash
# Runs the docker-compose stack for real on this machine, without any public container registry,
# and checks it end to end:
#
#   1. a container engine: the running one, or Debian's `docker.io` started here
#      (`dockerd --bridge=none --iptables=false`: no container bridge, no firewall changes);
#   2. a Debian base image made offline (`debootstrap --variant=minbase bookworm`, imported);
#   3. the release binaries (`cargo build --release --locked`), packaged by
#      deploy/docker/Dockerfile (BINARIES=prebuilt, the local base as RUNTIME_IMAGE), and NATS and
#      Prometheus images on the same base (deploy/compose/e2e/*.Dockerfile);
#   4. deploy/compose/compose.yaml with deploy/compose/e2e/compose.e2e.yaml (those images,
#      host networking, loopback only), then one named step per check: every service healthy by
#      its own health check, loopback-only listeners, non-root processes, the simulator's demo
#      answered through the containers, `docker compose restart` of the workers and of NATS under
#      load losing no acknowledged event, Prometheus scraping both services with every query of
#      the Grafana dashboard returning data, and the NATS data on its volume across `down`/`up`.
#
# Everything is torn down on exit (containers, volumes, and the engine if this script started
# it); the exit status is non-zero and the failing step is named when a check fails. Every wait
# is bounded. Needs root when the engine must be installed or started or the base image made
# (apt-get, dockerd, debootstrap); the package registries (Debian, PyPI, crates.io) are the only
# network it uses.
#
#   scripts/compose-e2e.sh
#
# State lives in the git-ignored .compose-e2e/ (COMPOSE_E2E_DIR): logs/ (this run's logs: the
# engine's, the builds', the services', the simulator's and its load report), cache/ (the base
# image's root filesystem as a tarball, reused by later runs), docker/ (the data of an engine
# started here: images and build cache). Remove the folder for a run from scratch.
# Settings: E2E_DEBIAN_MIRROR (http://deb.debian.org/debian), E2E_LOAD_SECONDS (40),
# E2E_LOAD_RATE (events/s, 150), E2E_LOAD_CONVERSATIONS (150).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

E2E_DIR="${COMPOSE_E2E_DIR:-$ROOT/.compose-e2e}"
LOGS="$E2E_DIR/logs"
CACHE="$E2E_DIR/cache"
BUILD="$E2E_DIR/build"
# Where an engine started by this script keeps its socket, pid file and run state: short paths
# (containerd's socket lives below it), outside any other engine's.
ENGINE_RUN="/run/yourlogic-compose-e2e"
ENGINE_SOCKET="unix://$ENGINE_RUN/docker.sock"

DEBIAN_MIRROR="${E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The base image: Debian 12 (the glibc the release binaries link against) with wget for the
# NATS health check of compose.yaml. Change the tag when the recipe changes.
BASE_IMAGE="yourlogic-e2e/debian:bookworm-minbase-wget"
BASE_TARBALL="$CACHE/debian-bookworm-minbase-wget.tar"

PROJECT="yourlogic-e2e"
IMAGE_TAG="e2e"
TOKEN="compose-e2e-token"
# The simulator reads the shared token from the environment, like the services.
export SALTEDCX_TOKEN="$TOKEN"
# The loopback ports of deploy/compose/e2e/compose.e2e.yaml and deploy/compose/e2e/prometheus.yml.
NATS_MONITOR="http://127.0.0.1:18222"
INGRESS="http://127.0.0.1:18080"
INGRESS_ADMIN="http://127.0.0.1:18081"
WORKER_METRICS=("http://127.0.0.1:19091/metrics" "http://127.0.0.1:19092/metrics")
PROMETHEUS="http://127.0.0.1:19090"
SIM_LISTEN="127.0.0.1:18088"
E2E_PORTS=(14222 18222 18080 18081 19091 19092 19090)
HEALTH_CHECKED_SERVICES=(nats ingress worker worker-2)
STACK_SERVICES=(nats ingress worker worker-2 prometheus)

LOAD_SECONDS="${E2E_LOAD_SECONDS:-40}"
LOAD_RATE="${E2E_LOAD_RATE:-150}"
LOAD_CONVERSATIONS="${E2E_LOAD_CONVERSATIONS:-150}"

SIM="$ROOT/target/release/saltedcx-sim"
CHECK=(python3 "$ROOT/scripts/lib/compose_e2e.py")
COMPOSE_BIN="$ROOT/.tools/bin/docker-compose"

CURRENT_STEP="setup"
NATS_VERSION=""
PROMETHEUS_VERSION=""
ENGINE_STARTED=0
ENGINE_PID=""
DOCKER_CLI=""
BACKGROUND_PIDS=()
STARTED_AT="$SECONDS"
STEP_TIMES=()

# ---- output and control ------------------------------------------------------------------------

log() { printf '==> %s\n' "$*" >&2; }

# fail MESSAGE: ends the run; the EXIT trap names the step and tears everything down.
fail() {
    printf 'compose-e2e: %s\n' "$*" >&2
    exit 1
}

# step NAME FUNCTION [ARGS...]: one named check; its duration goes into the summary.
step() {
    local name="$1" started="$SECONDS"
    shift
    CURRENT_STEP="$name"
    log "step: $name"
    "$@"
    STEP_TIMES+=("$(printf '%4ss  %s' "$((SECONDS - started))" "$name")")
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every second until it succeeds; fails naming
# WHAT when SECONDS pass first.
wait_for() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "$what: not reached within ${limit}s"
        fi
        sleep 1
    done
}

# docker ARGS...: the chosen client against the chosen engine, bounded in time.
docker() { timeout 600 "$DOCKER_CLI" "$@"; }

# compose ARGS...: the pinned Docker Compose on the e2e project, independent of the caller's
# compose settings (no .env file, none of the stack's variables from the shell).
compose() {
    env -u SALTEDCX_API_URL -u WORKER_REPLICAS -u BIND_ADDR -u PARTITIONS -u STREAM_MAX_AGE \
        -u STREAM_MAX_BYTES -u LOG_FORMAT -u RUST_LOG -u COMPOSE_FILE -u COMPOSE_PROFILES \
        COMPOSE_DISABLE_ENV_FILE=1 SALTEDCX_TOKEN="$TOKEN" YOURLOGIC_TAG="$IMAGE_TAG" \
        E2E_NATS_VERSION="$NATS_VERSION" E2E_PROMETHEUS_VERSION="$PROMETHEUS_VERSION" \
        timeout 300 "$COMPOSE_BIN" -p "$PROJECT" --project-directory deploy/compose \
        -f deploy/compose/compose.yaml -f deploy/compose/e2e/compose.e2e.yaml "$@"
}

# start_background NAME COMMAND...: runs COMMAND in the background, output in LOGS/NAME.log;
# stopped on exit. Sets BACKGROUND_PID.
start_background() {
    local name="$1"
    shift
    "$@" >"$LOGS/$name.log" 2>&1 &
    BACKGROUND_PID=$!
    BACKGROUND_PIDS+=("$BACKGROUND_PID")
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (10).
stop_pid() {
    local pid="$1" limit="${2:-10}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < limit * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---- teardown ----------------------------------------------------------------------------------

on_exit() {
    local status=$? pid
    trap - EXIT INT TERM
    set +e
    if ((status != 0)); then
        printf '\ncompose-e2e: FAILED at step "%s" (exit %s); logs in %s\n' "$CURRENT_STEP" "$status" "$LOGS" >&2
    fi
    for pid in "${BACKGROUND_PIDS[@]}"; do stop_pid "$pid"; done
    if [[ -n "$DOCKER_CLI" ]] && timeout 30 "$DOCKER_CLI" info >/dev/null 2>&1; then
        compose logs --no-color --timestamps >"$LOGS/compose.log" 2>&1
        if ((status != 0)); then
            compose ps -a >&2
            log "last lines of every service (all of them in $LOGS/compose.log):"
            compose logs --no-color --tail 15 >&2
        fi
        log "teardown: docker compose down -v"
        compose down -v --remove-orphans --timeout 30 >"$LOGS/teardown.log" 2>&1 \
            || { cat "$LOGS/teardown.log" >&2; status=1; }
    fi
    if ((ENGINE_STARTED)); then
        log "teardown: stopping the engine this script started"
        [[ -n "$ENGINE_PID" ]] && stop_pid "$ENGINE_PID" 30
        # dockerd leaves its network namespace mounted below its exec root, and its sockets there.
        awk -v root="$ENGINE_RUN/" 'index($2, root) == 1 {print $2}' /proc/mounts | xargs -r umount
        rm -rf "$ENGINE_RUN"
    fi
    if ((status == 0)); then
        printf '\ncompose-e2e: passed in %ss\n' "$((SECONDS - STARTED_AT))"
        printf '%s\n' "${STEP_TIMES[@]}"
    fi
    exit "$status"
}

# ---- prerequisites -----------------------------------------------------------------------------

# apt_install PACKAGE...: installs Debian packages (root), updating the lists once if needed.
apt_install() {
    [[ "$(id -u)" == 0 ]] || fail "installing $* needs root (apt-get); run as root or install them first"
    command -v apt-get >/dev/null || fail "$* missing and no apt-get to install them"
    log "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get install -y -q=2 --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1 \
        || { timeout 600 apt-get update -q=2 >>"$LOGS/apt.log" 2>&1 \
            && timeout 900 apt-get install -y -q=2 --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1; } \
        || { tail -n 20 "$LOGS/apt.log" >&2; fail "apt-get install $* failed"; }
}

prerequisites() {
    local missing=() tool
    for tool in curl python3 ss timeout; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || fail "missing commands: ${missing[*]}"
    # The pinned Docker Compose (and Debian's Prometheus, whose binary the Prometheus image
    # carries) and the pinned nats-server, as the rest of the project uses them.
    timeout 900 scripts/install-deploy-tools.sh >"$LOGS/install-deploy-tools.log" 2>&1 \
        || { cat "$LOGS/install-deploy-tools.log" >&2; fail "scripts/install-deploy-tools.sh failed"; }
    NATS_SERVER="$(timeout 600 scripts/install-nats-server.sh 2>"$LOGS/install-nats-server.log")" \
        || { cat "$LOGS/install-nats-server.log" >&2; fail "scripts/install-nats-server.sh failed"; }
    PROMETHEUS_BIN="$(dirname "$(readlink -f .tools/bin/promtool)")/prometheus"
    [[ -x "$PROMETHEUS_BIN" ]] || fail "no prometheus binary beside $(readlink -f .tools/bin/promtool)"
    NATS_VERSION="$("$NATS_SERVER" --version | sed -n 's/.* v\([0-9][0-9.]*\).*/\1/p')"
    # Docker tags allow no `+` (Debian's version is e.g. 2.42.0+ds).
    PROMETHEUS_VERSION="$("$PROMETHEUS_BIN" --version 2>&1 | awk 'NR == 1 {print $3}' | tr '+' '-')"
    [[ -n "$NATS_VERSION" && -n "$PROMETHEUS_VERSION" ]] || fail "cannot read the NATS or Prometheus version"
    log "docker compose $("$COMPOSE_BIN" version --short), nats-server $NATS_VERSION, prometheus $PROMETHEUS_VERSION"
}

# pick_docker_client: a docker client that builds with BuildKit: one with the buildx plugin, or
# an engine-bundled client older than 23 (BuildKit built in, e.g. Debian's docker.io 20.10).
pick_docker_client() {
    local candidate major
    for candidate in $(type -ap docker) /usr/bin/docker; do
        [[ -x "$candidate" ]] || continue
        if timeout 30 "$candidate" buildx version >/dev/null 2>&1; then
            DOCKER_CLI="$candidate"
            return 0
        fi
        major="$(timeout 30 "$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)"
        if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 23)); then
            DOCKER_CLI="$candidate"
            export DOCKER_BUILDKIT=1
            return 0
        fi
    done
    return 1
}

# ---- steps -------------------------------------------------------------------------------------

container_engine() {
    pick_docker_client || apt_install docker.io
    pick_docker_client || fail "no docker client that can build with BuildKit (install the buildx plugin)"
    export DOCKER_CONFIG="$E2E_DIR/docker-config"
    mkdir -p "$DOCKER_CONFIG"
    if timeout 30 "$DOCKER_CLI" info >/dev/null 2>&1; then
        log "using the running engine (${DOCKER_HOST:-default socket}); client $DOCKER_CLI"
        return 0
    fi
    export DOCKER_HOST="$ENGINE_SOCKET"
    command -v dockerd >/dev/null || apt_install docker.io
    [[ "$(id -u)" == 0 ]] || fail "starting dockerd needs root"
    mkdir -p "$ENGINE_RUN" "$E2E_DIR/docker"
    # A stale engine of an interrupted run of this script: stop it first.
    if [[ -f "$ENGINE_RUN/dockerd.pid" ]]; then
        stop_pid "$(cat "$ENGINE_RUN/dockerd.pid")" 30
        rm -f "$ENGINE_RUN/dockerd.pid"
    fi
    log "starting dockerd --bridge=none --iptables=false (log: $LOGS/dockerd.log)"
    dockerd --bridge=none --iptables=false --data-root "$E2E_DIR/docker" --exec-root "$ENGINE_RUN/exec" \
        --pidfile "$ENGINE_RUN/dockerd.pid" -H "$ENGINE_SOCKET" >"$LOGS/dockerd.log" 2>&1 &
    ENGINE_PID=$!
    ENGINE_STARTED=1
    local deadline=$((SECONDS + 60))
    until timeout 10 "$DOCKER_CLI" info >/dev/null 2>&1; do
        kill -0 "$ENGINE_PID" 2>/dev/null || { tail -n 20 "$LOGS/dockerd.log" >&2; fail "dockerd exited"; }
        ((SECONDS < deadline)) || { tail -n 20 "$LOGS/dockerd.log" >&2; fail "dockerd not ready within 60s"; }
        sleep 1
    done
    log "engine $(timeout 30 "$DOCKER_CLI" version --format '{{.Server.Version}}') ready; client $DOCKER_CLI"
}

# The base image, from the engine, else from the cached tarball, else made with debootstrap.
base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "$BASE_IMAGE already in the engine"
        return 0
    fi
    if [[ ! -s "$BASE_TARBALL" ]]; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        [[ "$(id -u)" == 0 ]] || fail "debootstrap needs root"
        local rootfs="$E2E_DIR/rootfs"
        rm -rf "$rootfs"
        log "debootstrap --variant=minbase --include=wget bookworm (log: $LOGS/debootstrap.log)"
        timeout 900 debootstrap --variant=minbase --include=wget bookworm "$rootfs" "$DEBIAN_MIRROR" \
            >"$LOGS/debootstrap.log" 2>&1 || { tail -n 20 "$LOGS/debootstrap.log" >&2; fail "debootstrap failed"; }
        # Package caches and lists are of no use in an image without apt runs.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        mkdir -p "$CACHE"
        tar --numeric-owner -C "$rootfs" -cf "$BASE_TARBALL.partial" .
        mv "$BASE_TARBALL.partial" "$BASE_TARBALL"
        rm -rf "$rootfs"
    fi
    log "importing $BASE_TARBALL as $BASE_IMAGE"
    docker import - "$BASE_IMAGE" <"$BASE_TARBALL" >/dev/null
}

release_build() {
    timeout 3600 nice -n 10 cargo build --release --locked -p ingress -p worker -p saltedcx-sim
}

# build_image LOG_NAME CONTEXT DOCKERFILE ARGS...: one `docker build`, output in its log.
build_image() {
    local name="$1" context="$2" dockerfile="$3"
    shift 3
    docker build --progress plain -f "$dockerfile" "$@" "$context" >"$LOGS/build-$name.log" 2>&1 \
        || { tail -n 30 "$LOGS/build-$name.log" >&2; fail "docker build of $name failed (log: $LOGS/build-$name.log)"; }
}

images() {
    rm -rf "$BUILD"
    mkdir -p "$BUILD/yourlogic" "$BUILD/nats/data" "$BUILD/prometheus/data"
    cp target/release/ingress target/release/worker target/release/saltedcx-sim "$BUILD/yourlogic/"
    # Our Dockerfile without its `# syntax=` line: that line makes BuildKit fetch the Dockerfile
    # frontend image from Docker Hub; offline, the engine's built-in frontend reads the same file.
    sed '1{/^# syntax=/d}' deploy/docker/Dockerfile >"$BUILD/Dockerfile"
    local target
    for target in ingress worker saltedcx-sim; do
        log "image yourlogic/$target:$IMAGE_TAG (deploy/docker/Dockerfile, BINARIES=prebuilt)"
        build_image "$target" "$BUILD/yourlogic" "$BUILD/Dockerfile" --target "$target" \
            --build-arg BINARIES=prebuilt --build-arg RUNTIME_IMAGE="$BASE_IMAGE" -t "yourlogic/$target:$IMAGE_TAG"
    done
    cp "$NATS_SERVER" "$BUILD/nats/nats-server"
    log "image yourlogic-e2e/nats:$NATS_VERSION"
    build_image nats "$BUILD/nats" deploy/compose/e2e/nats.Dockerfile \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "yourlogic-e2e/nats:$NATS_VERSION"
    cp "$PROMETHEUS_BIN" "$BUILD/prometheus/prometheus"
    log "image yourlogic-e2e/prometheus:$PROMETHEUS_VERSION"
    build_image prometheus "$BUILD/prometheus" deploy/compose/e2e/prometheus.Dockerfile \
        --build-arg BASE_IMAGE="$BASE_IMAGE" -t "yourlogic-e2e/prometheus:$PROMETHEUS_VERSION"
}

# The port a leftover of another run would hold: fail early with a clear message.
ports_free() {
    local port
    for port in "${E2E_PORTS[@]}" "${SIM_LISTEN##*:}"; do
        if ss -Hltn "sport = :$port" | grep -q .; then
            fail "port $port is in use: $(ss -Hltnp "sport = :$port" | head -n1)"
        fi
    done
}

stack_up() {
    ports_free
    compose up -d --no-build --wait --wait-timeout 180 >"$LOGS/up.log" 2>&1 \
        || { cat "$LOGS/up.log" >&2; fail "docker compose up did not get every service running and healthy"; }
}

# container SERVICE: the id of the service's container (running or not); fails without one.
container() {
    local id
    id="$(compose ps -aq "$1")"
    [[ -n "$id" ]] && echo "$id"
}

is_healthy() {
    local id
    id="$(container "$1")" && [[ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" == healthy ]]
}

# wait_healthy SECONDS SERVICE...: every SERVICE healthy by its own health check.
wait_healthy() {
    local limit="$1" service
    shift
    for service in "$@"; do
        wait_for "$limit" "service $service healthy" is_healthy "$service"
    done
}

health_checks() {
    local service test status
    for service in "${HEALTH_CHECKED_SERVICES[@]}"; do
        test="$(docker inspect -f '{{join .Config.Healthcheck.Test " "}}' "$(container "$service")")"
        [[ -n "$test" ]] || fail "service $service has no health check"
        wait_healthy 60 "$service"
        log "  $service healthy: $test"
    done
    status="$(docker inspect -f '{{.State.Status}}' "$(container prometheus)")"
    [[ "$status" == running ]] || fail "prometheus is $status"
    wait_for 60 "Prometheus ready" curl -fsS --max-time 5 "$PROMETHEUS/-/ready"
    log "  prometheus running and ready (no health check in compose.yaml; $PROMETHEUS/-/ready)"
}

loopback_only() {
    local port address service mode
    for port in "${E2E_PORTS[@]}"; do
        address="$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u | paste -sd' ')"
        [[ "$address" == "127.0.0.1:$port" ]] || fail "port $port: expected one listener on 127.0.0.1, found '$address'"
    done
    for service in "${STACK_SERVICES[@]}"; do
        mode="$(docker inspect -f '{{.HostConfig.NetworkMode}}' "$(container "$service")")"
        [[ "$mode" == host ]] || fail "service $service has network mode $mode, not host"
    done
    if docker network ls --format '{{.Name}}' | grep -q "^${PROJECT}_"; then
        fail "a container network was created: $(docker network ls --format '{{.Name}}' | grep "^${PROJECT}_")"
    fi
    log "  ports ${E2E_PORTS[*]} bound to 127.0.0.1 only; every service on the host network; no container network"
}

non_root() {
    local service id pid uid exec_uid
    for service in "${STACK_SERVICES[@]}"; do
        id="$(container "$service")"
        pid="$(docker inspect -f '{{.State.Pid}}' "$id")"
        uid="$(awk '/^Uid:/ {print $2 "/" $3}' "/proc/$pid/status")"
        exec_uid="$(docker exec "$id" id -u)"
        [[ "$uid" != 0/* && "$uid" != */0 && "$exec_uid" != 0 ]] \
            || fail "service $service runs as root (process uid/euid $uid, docker exec id -u $exec_uid)"
        log "  $service: process uid/euid $uid, docker exec id -u: $exec_uid"
    done
}

# The ingress's public port serves only the events; health and metrics are on its admin port.
public_port_events_only() {
    local path status
    for path in /metrics /readyz /healthz; do
        status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$INGRESS$path")"
        [[ "$status" == 404 ]] || fail "the ingress's public port answers $path with $status, not 404"
        status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$INGRESS_ADMIN$path")"
        [[ "$status" == 200 ]] || fail "the ingress's admin port answers $path with $status, not 200"
    done
    log "  /metrics, /readyz, /healthz: 404 on the events port $INGRESS, 200 on the admin port $INGRESS_ADMIN"
}

demo() {
    timeout 180 "$SIM" demo --listen "$SIM_LISTEN" --ingress-url "$INGRESS/v1/events" >"$LOGS/demo.log" 2>&1 \
        || { tail -n 40 "$LOGS/demo.log" >&2; fail "the demo did not get every event answered (log: $LOGS/demo.log)"; }
    grep -E 'conversation\(s\).*answered in time' "$LOGS/demo.log" >&2 || true
}

accepted_events() { "${CHECK[@]}" counter "$INGRESS_ADMIN/metrics" yourlogic_ingress_requests_total outcome=accepted; }

# accepted_at_least N: the ingress has accepted N events or more since it started.
accepted_at_least() { (($(accepted_events) >= $1)); }

# answered_by_both_at_least N: each worker has answered N events or more since it started.
answered_by_both_at_least() {
    local url
    for url in "${WORKER_METRICS[@]}"; do
        (($("${CHECK[@]}" counter "$url" yourlogic_events_processed_total outcome=answered) >= $1)) || return 1
    done
}

# load_seconds_left STARTED: seconds the load still sends events for (it started at STARTED);
# fails when none are left, since the restarts only prove something while events flow.
load_seconds_left() {
    local left=$((LOAD_SECONDS - (SECONDS - $1)))
    ((left > 0)) || fail "the load stopped sending before both restarts were done: raise E2E_LOAD_SECONDS (now $LOAD_SECONDS)"
    echo "$left"
}

restarts_under_load() {
    local report="$LOGS/load-report.json" load_pid
    rm -f "$report"
    start_background load timeout $((LOAD_SECONDS + 120)) "$SIM" load --listen "$SIM_LISTEN" --ingress-url "$INGRESS/v1/events" \
        --conversations "$LOAD_CONVERSATIONS" --rate "$LOAD_RATE" --duration "${LOAD_SECONDS}s" --progress 5s \
        --worker-metrics "$(IFS=,; echo "${WORKER_METRICS[*]}")" --report-json "$report"
    load_pid="$BACKGROUND_PID"
    local before load_started="$SECONDS" restarted left
    before="$(accepted_events)"
    wait_for 30 "load running (200 events accepted)" accepted_at_least $((before + 200))

    log "  $((SECONDS - load_started))s into the load: docker compose restart worker worker-2"
    restarted="$SECONDS"
    compose restart worker worker-2 >"$LOGS/restart-workers.log" 2>&1 \
        || { cat "$LOGS/restart-workers.log" >&2; fail "docker compose restart of the workers failed"; }
    wait_healthy 90 worker worker-2
    wait_for 60 "both restarted workers answering" answered_by_both_at_least 20
    log "  both workers restarted, healthy and answering after $((SECONDS - restarted))s"

    log "  $((SECONDS - load_started))s into the load: docker compose restart nats"
    restarted="$SECONDS"
    compose restart nats >"$LOGS/restart-nats.log" 2>&1 \
        || { cat "$LOGS/restart-nats.log" >&2; fail "docker compose restart of NATS failed"; }
    wait_healthy 90 nats ingress worker worker-2
    before="$(accepted_events)"
    left="$(load_seconds_left "$load_started")"
    wait_for "$left" "events accepted again after the NATS restart, while the load sends" accepted_at_least $((before + 50))
    log "  NATS restarted, every service healthy and events accepted again after $((SECONDS - restarted))s"

    local status=0
    wait "$load_pid" || status=$?
    grep -A40 'load report' "$LOGS/load.log" >"$LOGS/load-summary.txt" || true
    [[ -s "$report" ]] || { tail -n 30 "$LOGS/load.log" >&2; fail "the load run wrote no report (exit $status)"; }
    "${CHECK[@]}" load-report "$report" || fail "events were lost or reordered across the restarts (report: $report)"
}

prometheus_dashboard() {
    wait_for 60 "Prometheus scraping the ingress and both workers" \
        "${CHECK[@]}" scrape-targets "$PROMETHEUS" ingress=1 worker=2
    "${CHECK[@]}" scrape-targets "$PROMETHEUS" ingress=1 worker=2
    "${CHECK[@]}" dashboard "$PROMETHEUS" || fail "dashboard queries without data"
}

# stream_state: `messages last_seq` of the event stream.
stream_state() { "${CHECK[@]}" stream "$NATS_MONITOR" YOURLOGIC_EVENTS; }

# post_event REQUEST_ID: one hand-made event with a two-minute budget; fails unless accepted.
post_event() {
    local now expires answer
    now="$(date -u +%FT%TZ)"
    expires="$(date -u -d '+120 sec' +%FT%TZ)"
    answer="$(curl -sS --max-time 10 -X POST "$INGRESS/v1/events" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"requestId\":\"$1\",\"accountId\":\"compose-e2e\",\"time\":\"$now\",\"expires\":\"$expires\",
             \"region\":\"eu\",\"trigger\":{\"type\":\"MESSAGE\",\"participantType\":\"CUSTOMER\",
             \"contentCustomer\":\"Where is my parcel?\"},
             \"conversation\":{\"pid\":\"compose-e2e-volume\",\"status\":\"IN_PROGRESS\"}}")"
    grep -q '"accepted"' <<<"$answer" || fail "the ingress did not accept the event: $answer"
}

nats_volume() {
    local request_id before after waiting messages
    request_id="$(cat /proc/sys/kernel/random/uuid)"
    compose stop worker worker-2 >"$LOGS/stop-workers.log" 2>&1 || fail "docker compose stop of the workers failed"
    read -r waiting _ <<<"$(stream_state)"
    post_event "$request_id"
    before="$(stream_state)"
    read -r messages _ <<<"$before"
    ((messages == waiting + 1)) || fail "the event is not waiting in YOURLOGIC_EVENTS: $waiting, then $before"
    log "  stored, no worker running: YOURLOGIC_EVENTS messages/last_seq $before"

    compose down --timeout 30 >"$LOGS/down.log" 2>&1 || { cat "$LOGS/down.log" >&2; fail "docker compose down failed"; }
    [[ -z "$(compose ps -aq)" ]] || fail "containers left after docker compose down"
    docker volume inspect "${PROJECT}_nats-data" >/dev/null || fail "the NATS volume is gone after down"
    log "  docker compose down: no container left, volume ${PROJECT}_nats-data kept"

    compose up -d --no-build --wait --wait-timeout 120 nats >"$LOGS/up-nats.log" 2>&1 \
        || { cat "$LOGS/up-nats.log" >&2; fail "NATS did not come back up"; }
    after="$(stream_state)"
    [[ "$after" == "$before" ]] || fail "YOURLOGIC_EVENTS after up ($after) differs from before down ($before)"
    log "  docker compose up nats: YOURLOGIC_EVENTS messages/last_seq $after, as before"

    start_background serve "$SIM" serve --listen "$SIM_LISTEN"
    local serve_pid="$BACKGROUND_PID"
    wait_for 30 "simulator serving callbacks" curl -s --max-time 5 -o /dev/null "http://$SIM_LISTEN/"
    compose up -d --no-build --wait --wait-timeout 180 >"$LOGS/up-again.log" 2>&1 \
        || { cat "$LOGS/up-again.log" >&2; fail "the stack did not come back up"; }
    wait_for 60 "the stored event answered after up (requestId $request_id)" grep -q "$request_id" "$LOGS/serve.log"
    stop_pid "$serve_pid"
    log "  every service back up; the event stored before down was answered after up"
}

# ---- main --------------------------------------------------------------------------------------

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$LOGS"
mkdir -p "$LOGS" "$CACHE"

step "prerequisites (Docker Compose, nats-server, Prometheus)" prerequisites
step "container engine" container_engine
# A leftover stack of an interrupted run (containers and volumes of this project only).
compose down -v --remove-orphans --timeout 10 >"$LOGS/cleanup.log" 2>&1 || true
step "base image $BASE_IMAGE" base_image
step "release build (cargo build --release --locked)" release_build
step "images from deploy/docker/Dockerfile and deploy/compose/e2e/" images
step "docker compose up" stack_up
step "every service healthy by its own health check" health_checks
step "loopback only, no container network" loopback_only
step "non-root users in every container" non_root
step "the ingress's public port serves only the events" public_port_events_only
step "demo answered through the containerised ingress and workers" demo
step "restart of the workers and of NATS under load: nothing lost, order kept" restarts_under_load
step "Prometheus scrapes both services; the dashboard's queries return data" prometheus_dashboard
step "NATS data on its volume across down/up" nats_volume
CURRENT_STEP="teardown"
