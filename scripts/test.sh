#!/usr/bin/env bash
# The test job: system packages, format and lint gates, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The virtual camera the live tests load (built here so that no test waits
# for it to compile while others measure frame timing).
cargo build -p isp-vcam
cargo test --workspace --all-targets
