#!/usr/bin/env bash
# Validates the deployment files offline (no Docker engine, no cluster):
#   Dockerfile        hadolint; build targets, non-root user, HEALTHCHECK, cargo-chef layer,
#                     the BINARIES switch (builder or prebuilt)
#   compose           `docker compose config -q` (default, demo, load, tracing profiles) + semantics;
#                     the override of scripts/compose-e2e.sh (config -q, hadolint of its images)
#   Prometheus        promtool check config (compose and compose-e2e) / check rules / test rules
#   PrometheusRule    generated from the rules file and identical to it
#   Grafana           dashboard JSON structure (datasource + query per panel), provisioning,
#                     and every dashboard/KEDA query parsed by promtool
#   Kubernetes        kustomize build of base, dev and production; every object validated against
#                     the Kubernetes 1.30 and 1.37 schemas (strict) or a bundled CRD schema
#                     (ScaledObject, ServiceMonitor, PrometheusRule), plus policy checks
#   metric names      every yourlogic_* name used is exported; list in .tools/used-metric-names.txt
#   NATS              production and compose locked down (users, permissions, TLS for clients
#                     and routes, credentials from Secrets; scripts/lib/nats_security.py);
#                     `nats-server -t` of every configuration, production as rendered, with
#                     certificates from scripts/nats-secrets.sh; the rendered production config
#                     run as three servers on loopback (routes over mutual TLS, strangers refused)
#   NATS Helm values, docs/deploy.md
#
# Tools are installed (pinned) into .tools/ by scripts/install-deploy-tools.sh on first use.
# Exits non-zero if any check fails; the last line is `deploy-checks: N passed, M failed`.
# -v prints the output of passing checks too.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PY="$TOOLS/deploy-venv/bin/python"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

passed=0
failed=0
failures=()

# run NAME COMMAND...: one check; its output is shown when it fails (or with -v).
run() {
    local name="$1" out status
    shift
    out="$("$@" 2>&1)"
    status=$?
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok    %s\n' "$name"
        [ "$VERBOSE" = 1 ] && [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/      /'
    else
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL  %s (exit %s)\n' "$name" "$status"
        printf '%s\n' "$out" | sed 's/^/      /'
    fi
    return 0
}

finish() {
    if [ "$failed" -gt 0 ]; then
        printf '\nfailed checks:\n'
        printf '  - %s\n' "${failures[@]}"
    fi
    echo "deploy-checks: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# ---- tools --------------------------------------------------------------------------------------
run "tools installed (scripts/install-deploy-tools.sh)" env DEPLOY_TOOLS_QUIET=1 bash scripts/install-deploy-tools.sh
if [ "$failed" -gt 0 ]; then
    echo "cannot check without the tools"
    finish
fi
[ "$VERBOSE" = 1 ] && sed 's/^/      /' "$TOOLS/deploy-tool-versions.txt"

# ---- image --------------------------------------------------------------------------------------
run "Dockerfile lint (hadolint)" "$BIN/hadolint" deploy/docker/Dockerfile
run "Dockerfile targets, user, health checks" "$PY" scripts/check-deploy.py dockerfile

# ---- compose ------------------------------------------------------------------------------------
COMPOSE=("$BIN/docker-compose" --project-directory deploy/compose -f deploy/compose/compose.yaml)
# Validate without the developer's own deploy/compose/.env or shell overrides leaking in.
compose_env=(env -u SALTEDCX_TOKEN -u SALTEDCX_API_URL -u WORKER_REPLICAS -u BIND_ADDR -u PARTITIONS
    -u OTEL_EXPORTER_OTLP_ENDPOINT COMPOSE_DISABLE_ENV_FILE=1 DOCKER_CONFIG="$WORK/docker")
run "compose config (default services)" "${compose_env[@]}" "${COMPOSE[@]}" config -q
run "compose config (profile demo)" "${compose_env[@]}" "${COMPOSE[@]}" --profile demo config -q
run "compose config (profile load)" "${compose_env[@]}" "${COMPOSE[@]}" --profile load config -q
run "compose config (profile tracing)" "${compose_env[@]}" OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318 \
    "${COMPOSE[@]}" --profile tracing config -q
compose_semantics() {
    "${compose_env[@]}" "${COMPOSE[@]}" --profile demo --profile load --profile tracing config --format json >"$WORK/compose.json" \
        && "$PY" scripts/check-deploy.py compose "$WORK/compose.json"
}
run "compose services, profiles, hardening, scrape targets, NATS users" compose_semantics
compose_tls() {
    "${compose_env[@]}" "${COMPOSE[@]}" -f deploy/compose/compose.tls.yaml config --format json >"$WORK/compose-tls.json" \
        && "$PY" scripts/check-deploy.py compose-tls "$WORK/compose-tls.json"
}
run "compose with TLS to NATS (compose.tls.yaml)" compose_tls
# The stack as scripts/compose-e2e.sh runs it (local images, host network); it sets these.
run "compose config (e2e override, deploy/compose/e2e)" "${compose_env[@]}" YOURLOGIC_TAG=e2e \
    E2E_NATS_VERSION=0 E2E_PROMETHEUS_VERSION=0 "${COMPOSE[@]}" -f deploy/compose/e2e/compose.e2e.yaml config -q
run "e2e image Dockerfiles lint (hadolint)" "$BIN/hadolint" deploy/compose/e2e/nats.Dockerfile \
    deploy/compose/e2e/prometheus.Dockerfile

# ---- Prometheus ---------------------------------------------------------------------------------
run "promtool check config" "$BIN/promtool" check config deploy/prometheus/prometheus.yml
run "promtool check config (compose-e2e)" "$BIN/promtool" check config deploy/compose/e2e/prometheus.yml
run "promtool check rules" "$BIN/promtool" check rules deploy/prometheus/rules/yourlogic.rules.yaml
run "promtool test rules (alert unit tests)" "$BIN/promtool" test rules deploy/prometheus/tests/yourlogic.rules.test.yaml
run "PrometheusRule generated from the rules file" "$PY" scripts/sync-prometheusrule.py --check

# ---- Grafana ------------------------------------------------------------------------------------
run "Grafana dashboard: JSON, datasource and query per panel" "$PY" scripts/check-deploy.py dashboard "$WORK/queries.rules.yaml"
if [ -f "$WORK/queries.rules.yaml" ]; then
    run "dashboard and KEDA queries parse (promtool)" "$BIN/promtool" check rules "$WORK/queries.rules.yaml"
fi

# ---- Kubernetes ---------------------------------------------------------------------------------
for target in base overlays/dev overlays/production; do
    name="$(basename "$target")"
    run "kustomize build $target" sh -c "'$BIN/kubectl' kustomize 'deploy/k8s/$target' >'$WORK/$name.yaml'"
    if [ -s "$WORK/$name.yaml" ]; then
        run "k8s $name: schemas (1.30, 1.37, CRDs) and policy" "$PY" scripts/check-deploy.py k8s "$WORK/$name.yaml" "$name"
    fi
done
run "NATS Helm chart values" "$PY" scripts/check-deploy.py nats-values

# nats-server -t parses each NATS configuration (the pinned server of the test suite, installed
# by scripts/install-nats-server.sh).
nats_server=""
if [ -f scripts/install-nats-server.sh ]; then
    nats_server="$(bash scripts/install-nats-server.sh 2>"$WORK/nats-install.log")" || nats_server=""
fi
if [ -n "$nats_server" ] && [ -x "$nats_server" ]; then
    # Throwaway certificates and passwords, made the way docs/deploy.md says to make real ones.
    run "scripts/nats-secrets.sh makes certificates and passwords" bash scripts/nats-secrets.sh "$WORK/secrets"
    nats_env=(env NATS_INGRESS_PASSWORD="$(cat "$WORK/secrets/ingress-password" 2>/dev/null)"
        NATS_WORKER_PASSWORD="$(cat "$WORK/secrets/worker-password" 2>/dev/null)"
        NATS_ADMIN_PASSWORD="$(cat "$WORK/secrets/admin-password" 2>/dev/null)" SERVER_NAME=nats-0)
    # compose: its config file and the production permissions, laid out as mounted in the container.
    compose_nats() {
        mkdir -p "$WORK/compose-nats" \
            && cp deploy/compose/nats.conf "$WORK/compose-nats/yourlogic.conf" \
            && cp deploy/compose/nats-tls.conf "$WORK/compose-nats/tls.conf" \
            && cp deploy/k8s/overlays/production/nats-auth.conf "$WORK/compose-nats/" \
            && sed -i "s#/etc/nats-tls/#$WORK/secrets/#" "$WORK/compose-nats/tls.conf" \
            && "${nats_env[@]}" "$nats_server" -c "$WORK/compose-nats/yourlogic.conf" -js -sd "$WORK/js" -m 8222 -t \
            && "${nats_env[@]}" "$nats_server" -c "$WORK/compose-nats/tls.conf" -js -sd "$WORK/js" -m 8222 -t
    }
    run "nats-server -t compose configs (plain and TLS)" compose_nats
    run "nats-server -t deploy/k8s/base/nats.conf" env SERVER_NAME=nats-0 "$nats_server" -c deploy/k8s/base/nats.conf -t
    # production: the rendered ConfigMap as the pod mounts it, with the throwaway secrets.
    production_nats() {
        "$PY" scripts/check-deploy.py nats-pod-config "$WORK/production.yaml" "$WORK/pod" >/dev/null \
            && mkdir -p "$WORK/pod/etc/nats-tls" && cp "$WORK/secrets/"{ca.crt,tls.crt,tls.key} "$WORK/pod/etc/nats-tls/" \
            && "${nats_env[@]}" "$nats_server" -c "$WORK/pod/etc/nats-config/nats.conf" -t
    }
    run "nats-server -t production (rendered, with its certificates and passwords)" production_nats
    # The same configuration run as a cluster on loopback: routes over mutual TLS, strangers refused.
    production_routes() {
        bash scripts/nats-secrets.sh "$WORK/stranger" >/dev/null \
            && "$PY" scripts/check-deploy.py nats-routes "$WORK/pod" "$nats_server" "$WORK/secrets" "$WORK/stranger"
    }
    run "production NATS cluster: routes over mutual TLS, another CA refused" production_routes
else
    echo "skip  nats-server -t (scripts/install-nats-server.sh unavailable: $(tail -n1 "$WORK/nats-install.log" 2>/dev/null))"
fi

# ---- metric names, docs -------------------------------------------------------------------------
run "yourlogic_* names used are exported (.tools/used-metric-names.txt)" \
    "$PY" scripts/check-deploy.py metrics "$TOOLS/used-metric-names.txt"
run "docs/deploy.md" "$PY" scripts/check-deploy.py docs

finish
