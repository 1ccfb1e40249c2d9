#!/usr/bin/env bash
# Memory soak (by hand, not in CI; about a minute on 2 cores): 100,000 frames
# at 320x240 through the real engine, then the resident-set growth from frame
# 10,000 to the end and the telemetry log's bytes per event in memory,
# checked against the targets (<= 16 MB, <= 48 bytes), and the telemetry
# exported after the run checked for every row, in order.
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-100000}"
csv="$(mktemp -d)/telemetry.csv"
# cargo's own path to the binary (CARGO_TARGET_DIR may put it elsewhere).
out="$(cargo run --release -q -p isp-engine --bin isp -- bench --width 320 --height 240 --frames "$frames" --telemetry-csv "$csv")"
python3 - "$out" "$csv" <<'PY'
import csv, json, sys
v = json.loads(sys.argv[1])
m = v["memory"]
t = m["telemetry"]
print(f"frames {v['frames']}  {v['frames_per_s']:.0f} fps  backend: {v['backend']}")
print(f"rss at frame {m['rss_mark_frame']}: {m['rss_at_mark_mb']:.1f} MB, at the end: "
      f"{m['rss_end_mb']:.1f} MB, growth {m['rss_growth_mb']:.1f} MB (target <= 16)")
print(f"telemetry: {t['events']} events, {t['in_memory']} in memory at "
      f"{m['telemetry_bytes_per_event']:.1f} bytes each (target <= 48), "
      f"{t['spilled']} spilled in {t['spilled_bytes'] / 1e6:.1f} MB")
# Nothing lost: the export after the run has every row, in order.
with open(sys.argv[2], newline="") as f:
    seqs = [int(r["seq"]) for r in csv.DictReader(f)]
in_order = seqs == list(range(t["events"]))
print(f"telemetry.csv: {len(seqs)} rows, every one in order: {in_order}")
ok = m["rss_growth_mb"] <= 16 and m["telemetry_bytes_per_event"] <= 48 and in_order
sys.exit(0 if ok else 1)
PY
