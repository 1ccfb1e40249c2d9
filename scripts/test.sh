#!/usr/bin/env bash
# The test job: system packages, format and lint gates, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A clean build takes ~12 GB of target/; say what the disk has before
# starting, so a full disk shows as such rather than as a compile error.
df -h . | tail -1 | awk '{print "disk free for target/: " $4}'
# Incremental state only pays off on rebuilds; on a clean clone (CI) it is
# a few GB of disk written for nothing.
if [[ "${CI:-}" == "true" ]]; then export CARGO_INCREMENTAL=0; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
# LibRaw (rawpy) for the tests that read written DNGs back.
scripts/pyref.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The virtual camera the live tests load (built here so that no test waits
# for it to compile while others measure frame timing).
cargo build -p isp-vcam
cargo test --workspace --all-targets
