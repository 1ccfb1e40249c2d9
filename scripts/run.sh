#!/usr/bin/env bash
# The main job: the studio on a display, else the CLI on the embedded demo session.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec cargo run --release -p isp-studio -- "$@"
else
  # cargo's own path to the binary (CARGO_TARGET_DIR may put it elsewhere).
  exec cargo run --release -q -p isp-engine --bin isp -- process --out out/demo "$@"
fi
