#!/usr/bin/env bash
# Installs what tests/bench/profile.sh needs and prints the directory of the flame-graph tools
# (the only thing on stdout; progress goes to stderr):
#
# - `perf` (Debian's linux-perf), with apt-get, when it is missing;
# - the pinned inferno (inferno-collapse-perf, inferno-flamegraph: perf samples to an SVG flame
#   graph), built from crates.io with `cargo install --locked` into <repo>/.tools/inferno
#   (git-ignored; about 1.5 CPU-minutes once).
#
# Idempotent: does nothing when both are there at the pinned version.
set -euo pipefail

INFERNO_VERSION="0.12.3"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
target="${tools_dir}/inferno"

if ! command -v perf >/dev/null 2>&1; then
    echo "install-profiling-tools: installing perf (Debian linux-perf) ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >&2
fi

installed_ok() {
    # The tools have no --version: cargo install's record names the version installed.
    [[ -x "${target}/bin/inferno-flamegraph" && -x "${target}/bin/inferno-collapse-perf" ]] &&
        grep -q "^\"inferno ${INFERNO_VERSION} " "${target}/.crates.toml" 2>/dev/null
}

if ! installed_ok; then
    mkdir -p "${tools_dir}"
    exec 9>"${tools_dir}/.inferno.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    if ! installed_ok; then
        echo "install-profiling-tools: building inferno ${INFERNO_VERSION} into ${target} ..." >&2
        cargo install --quiet --locked --force --root "${target}" inferno --version "${INFERNO_VERSION}" >&2
    fi
fi
echo "${target}/bin"
