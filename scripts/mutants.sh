#!/usr/bin/env bash
# Mutation testing of the engine, one group of modules against the engine
# tests that cover it (by hand, never in CI: the engine rebuilds for every
# mutant, about a minute each on 2 cores).
#
#   scripts/mutants.sh GROUP [K/N]
#
# GROUP: core (controls, resource_manager, tuning, unpack), dng, calibrate,
# fusion, libcamera. K/N takes every N-th mutant from the K-th (round robin
# over the sorted list, so each module is sampled evenly; 0/1 is all of
# them). Results go to target/mutants-out/GROUP-K-N/mutants.out (caught.txt,
# missed.txt, timeout.txt, unviable.txt). The copy cargo-mutants works in is
# a scratch folder, never the tree (no --in-place): stopping a run leaves
# nothing behind. Builds use the `mutants` profile (Cargo.toml: the engine at
# opt-level 1, incremental) and mold when it is installed, in
# target/mutants-build or $ISP_MUTANTS_TARGET (kept between runs). Further
# arguments go to cargo-mutants (for example --iterate).
set -euo pipefail
cd "$(dirname "$0")/.."
group=${1:?usage: scripts/mutants.sh core|dng|calibrate|fusion|libcamera [K/N]}
shard=${2:-0/1}
shift $(( $# < 2 ? $# : 2 ))
case "$group" in
  core)
    files=(engine/src/controls.rs engine/core/src/resource_manager.rs
      'engine/core/src/resource_manager/*.rs' engine/stages/src/tuning.rs engine/stages/src/stages/unpack.rs)
    tests=(--lib --test resource_manager --test runtime --test reference --test chain) ;;
  dng) files=('engine/dng/src/*.rs'); tests=(--lib --test dng) ;;
  calibrate) files=('engine/src/calibrate/*.rs'); tests=(--lib --test calibrate) ;;
  fusion) files=('engine/fusion/src/*.rs'); tests=(--lib --test capture --test gpu_fusion) ;;
  libcamera) files=('engine/src/libcamera/*.rs'); tests=(--lib --test libcamera) ;;
  *) echo "scripts/mutants.sh: unknown group $group" >&2; exit 2 ;;
esac
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
fargs=()
for f in "${files[@]}"; do fargs+=(-f "$f"); done
# Every cargo call (the build too) takes the test selection, so a mutant
# links only the tests that run.
for t in "${tests[@]}"; do fargs+=(-C "$t"); done
export CARGO_TARGET_DIR="${ISP_MUTANTS_TARGET:-$PWD/target/mutants-build}"
if command -v mold >/dev/null; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi
out="target/mutants-out/$group-${shard/\//-}"
mkdir -p "$out"
# The engine and the crates split from it (isp-core, isp-dng, isp-fusion,
# isp-stages);
# tests across the workspace, since the engine's tests cover isp-core.
cargo mutants -p isp-engine -p isp-core -p isp-dng -p isp-fusion -p isp-stages --test-workspace=true --profile mutants --sharding round-robin --shard "$shard" \
  "${fargs[@]}" --timeout 180 --build-timeout 900 -o "$out" "$@"
