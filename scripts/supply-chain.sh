#!/usr/bin/env bash
# Checks of the dependencies, offline (what CI runs, after the lints):
#
# 1. the dependency graph against the policy in deny.toml (cargo-deny): every crate's license is
#    on the allowed list, no banned crate (a second TLS stack) and no wildcard version, every
#    crate from crates.io (no other registry, no git). Security advisories are not checked: their
#    database cannot be fetched in CI (run `cargo deny check advisories` where it can be);
# 2. no unused dependency (cargo-shear): every crate a Cargo.toml names is used by the code of
#    that package, and one used only by tests or examples is a dev-dependency. cargo-shear reads
#    the sources, so it works on stable Rust and needs no build (cargo-udeps needs nightly).
#    A crate needed without being named in the code goes under
#    `[package.metadata.cargo-shear] ignored`, with the reason.
#
#   scripts/supply-chain.sh            # installs the pinned tools into .tools/ when missing
set -euo pipefail
cd "$(dirname "$0")/.."
deny="$(scripts/install-cargo-tool.sh cargo-deny)"
shear="$(scripts/install-cargo-tool.sh cargo-shear)"
# --offline: crates and the index come from Cargo's local cache (filled by the build).
"$deny" --offline --log-level error check licenses bans sources
"$shear" --offline --locked --deny-warnings --color never
