#!/bin/bash
# Do Cartesian products pay on this CPU? (issue 5) The lookup stage of
# alibaba-47 at full size, batch 256, one thread, side by side in one run:
# no products, the cpu planner's plan, and the most products the 5% budget
# allows (fewest tables). Prints a Markdown table.
# usage: bench/products.sh [SECONDS]     (run from the repository root)
set -euo pipefail
seconds=${1:-5}
build=${BUILD:-build}
m=bench/models/alibaba-47.safetensors
mkdir -p bench/models
make -s all >/dev/null
[ -f "$m" ] || "$build/bin/microrec" model gen --preset alibaba-47 --seed 1 -o "$m"
echo "alibaba-47 (full size), lookup stage only, batch 256, 1 thread, ${seconds}s each;"\
     "$(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores, $(date -u +%Y-%m-%d)."
echo
echo "| plan | physical tables (lookups/sample) | p50 us/batch | samples/s |"
echo "|---|---:|---:|---:|"
for plan in --no-products "" --most-products; do
  "$build/bin/microrec" bench "$m" --batch 256 --stage lookup --seconds "$seconds" $plan --json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("| %s | %d | %.1f | %.0f |" % (sys.argv[1] or "planner (cpu)", r["lookups_per_sample"], r["p50_us"], r["samples_per_s"]))' "$plan"
done
