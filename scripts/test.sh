#!/usr/bin/env bash
# The test job: system packages, format and lint gates, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says how long it took (where CI's time goes).
started=$SECONDS
step() {
  local t=$SECONDS
  "$@"
  echo "test.sh: \`$*\` took $((SECONDS - t)) s ($((SECONDS - started)) s in all)"
}
step scripts/setup.sh
# A clean build takes ~12 GB of target/; say what the disk has before
# starting, so a full disk shows as such rather than as a compile error.
df -h . | tail -1 | awk '{print "disk free for target/: " $4}'
# Incremental state only pays off on rebuilds; on a clean clone (CI) it is
# a few GB of disk written for nothing.
if [[ "${CI:-}" == "true" ]]; then export CARGO_INCREMENTAL=0; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
# LibRaw (rawpy) for the tests that read written DNGs back.
step scripts/pyref.sh
step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets -- -D warnings
# Every test binary and the virtual camera (tests/vcam's own test builds its
# shared object) in one cargo run, so that the workspace's features are
# resolved once and nothing is compiled twice; the camera tests load that
# library (scripts/virtual-camera.sh) instead of building it again.
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
export ISP_VCAM_LIB="$target/debug/deps/libisp_vcam.so"
step cargo test --workspace --all-targets --no-run
step cargo test --workspace --all-targets
