#!/usr/bin/env bash
# Supply-chain checks of the dependency graph against the policy in deny.toml, offline (what CI
# runs, after the lints): every crate's license is on the allowed list, no banned crate (a
# second TLS stack) and no wildcard version, every crate from crates.io (no other registry, no
# git). Security advisories are not checked: their database cannot be fetched in CI (run
# `cargo deny check advisories` where it can be).
#
#   scripts/supply-chain.sh            # installs the pinned cargo-deny into .tools/ when missing
set -euo pipefail
cd "$(dirname "$0")/.."
deny="$(scripts/install-cargo-deny.sh)"
# --offline: crates and the index come from Cargo's local cache (filled by the build).
"$deny" --offline --log-level error check licenses bans sources
