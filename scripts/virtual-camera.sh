#!/usr/bin/env bash
# Runs a command with the virtual camera present: a userspace V4L2 device
# (tests/vcam, loaded with LD_PRELOAD) at /dev/video42 (VCAM_DEVICE), which
# the `v4l` crate, `isp devices` and the studio see as a camera.
#   scripts/virtual-camera.sh isp process v4l:/dev/video42 --frames 60 --out out/live
# Builds the library first if needed (cargo's own up-to-date check; honours
# CARGO_TARGET_DIR), unless ISP_VCAM_LIB names one already built. Environment for the device: VCAM_SCENE, VCAM_EXPOSURE,
# VCAM_LIGHT, VCAM_FAULTS (see tests/vcam/src/lib.rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
if [ -n "${ISP_VCAM_LIB:-}" ]; then
  # Built already, by the same cargo run as the tests (scripts/test.sh): a
  # `cargo build -p isp-vcam` here would resolve the workspace's features
  # differently and compile the engine and its dependencies again.
  lib="$ISP_VCAM_LIB"
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p isp-vcam
  lib="$target/debug/libisp_vcam.so"
fi
if [ ! -f "$lib" ]; then
  echo "$0: $lib was not built" >&2
  exit 1
fi
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$@"
