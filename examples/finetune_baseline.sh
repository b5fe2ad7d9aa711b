#!/usr/bin/env bash
# Train the baseline on the demo release, with focal loss and with plain CE, and compare them.
set -euo pipefail
test -d demo_out/release || streamo demo --out demo_out
streamo train demo_out/release --out runs/focal --video-root demo_out/videos --epochs 20
streamo train demo_out/release --out runs/ce --video-root demo_out/videos --epochs 20 --loss ce
streamo evaluate runs/focal demo_out/release
streamo evaluate runs/ce demo_out/release
