#!/usr/bin/env bash
# The demo's stages one by one, as a user runs them on their own videos.
set -euo pipefail
OUT=${1:-demo_steps}
streamo sample "$OUT/videos" --with-broken
streamo ingest "$OUT/videos" --out "$OUT/work" --fps 1
streamo annotate offline "$OUT/work"
streamo build "$OUT/work" --tasks temporal_grounding,dense_captioning
streamo release "$OUT/work" --out "$OUT/release" --validation-fraction 0.25
streamo validate "$OUT/release"
streamo stats "$OUT/release"
streamo export stream-format "$OUT/release" --out "$OUT/stream.jsonl" --video-root "$OUT/videos"
