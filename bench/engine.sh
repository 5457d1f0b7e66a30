#!/bin/bash
# First engine benchmark (issue 2): microseconds per batch (median, p99) and
# samples per second at batch 1, 32 and 256, one thread, on dlrm-criteo-small
# and on alibaba-47 generated at full size. Writes a Markdown table to
# bench/results/engine.md and prints it.
# usage: bench/engine.sh [SECONDS]     (run from the repository root)
set -euo pipefail
seconds=${1:-5}
build=${BUILD:-build}
testdata=${TESTDATA:-../shared/testdata}
models=bench/models
mkdir -p "$models" bench/results
make -s all >/dev/null
cli=$build/bin/microrec
a47=$models/alibaba-47.safetensors
[ -f "$a47" ] || "$cli" model gen --preset alibaba-47 --seed 1 -o "$a47"

out=bench/results/engine.md
{
  echo "Engine only (\`microrec bench\`), 1 thread, uniform random ids, ${seconds}s per row."
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores,"\
       "$(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%d)."
  echo
  echo "| model | batch | p50 us/batch | p99 us/batch | samples/s |"
  echo "|---|---:|---:|---:|---:|"
  for m in "$testdata/dlrm-criteo-small/model.safetensors" "$a47"; do
    [ -f "$m" ] || { echo "| $(basename "$(dirname "$m")") | (missing) | | | |"; continue; }
    name=$(basename "$(dirname "$m")"); [ "$m" = "$a47" ] && name=alibaba-47
    for b in 1 32 256; do
      "$cli" bench "$m" --batch "$b" --threads 1 --seconds "$seconds" --json |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %.2f | %.2f | %.0f |" % (sys.argv[1], r["batch"], r["p50_us"], r["p99_us"], r["samples_per_s"]))' "$name"
    done
  done
} | tee "$out"
