#!/bin/bash
# Load benchmark of microrecd (issue 4): for requests of batch 1 and batch 64,
# searches the peak rate whose p99 meets the SLO (microrec-load --find-peak),
# then sweeps the offered load from 10% to 125% of that peak, open loop, and
# draws the latency percentiles against the load and the latency
# distributions. Everything goes to bench/results/: load-peak-b*.json,
# load-sweep.jsonl, *.hgrm, load.md and the PNGs.
#
# usage: bench/load.sh [SECONDS_PER_RATE]     (run from the repository root)
# env:   BUILD (build), TESTDATA (../shared/testdata), MODEL (default: the
#        test data's dlrm-criteo-small, else a generated Criteo-shaped model),
#        SLO_B1_US (1000), SLO_B64_US (5000), CONNECTIONS (4),
#        SERVER_FLAGS (extra microrecd flags)
set -euo pipefail
seconds=${1:-5}
build=${BUILD:-build}
testdata=${TESTDATA:-../shared/testdata}
slo_b1=${SLO_B1_US:-1000}
slo_b64=${SLO_B64_US:-5000}
connections=${CONNECTIONS:-4}
results=bench/results
mkdir -p "$results" bench/models

# The bench's own needs: matplotlib for the pictures (not the test suite's).
tools/deps.sh python3-matplotlib python3-numpy
make -s BUILD="$build" "$build/bin/microrecd" "$build/bin/microrec" \
  "$build/bin/microrec-load" >/dev/null
load=$build/bin/microrec-load

model=${MODEL:-$testdata/dlrm-criteo-small/model.safetensors}
if [ ! -f "$model" ]; then
  model=bench/models/criteo-4k.safetensors
  [ -f "$model" ] || "$build/bin/microrec" model gen --preset criteo \
    --max-rows 4000 --seed 1 -o "$model" >/dev/null
fi

# The server on an ephemeral loopback port; stopped however we exit.
# shellcheck disable=SC2086
"$build/bin/microrecd" --model "$model" --listen 127.0.0.1:0 ${SERVER_FLAGS:-} \
  >"$results/load-server.out" 2>"$results/load-server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's/^listening //p' "$results/load-server.out" | head -n1)
  [ -n "$addr" ] && break
  kill -0 $server_pid 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { echo "load.sh: microrecd did not start; see $results/load-server.log" >&2; exit 1; }
echo "load.sh: microrecd on $addr serving $model"

sweep=$results/load-sweep.jsonl
: >"$sweep"
hgrms=()
for batch in 1 64; do
  slo=$slo_b1
  [ "$batch" = 64 ] && slo=$slo_b64
  peak_json=$results/load-peak-b$batch.json
  echo "load.sh: batch $batch: searching the peak rate with p99 <= $slo us"
  "$load" --server "$addr" --connections "$connections" --batch "$batch" \
    --find-peak --slo-p99-us "$slo" --start-rate 500 --step-duration 2 \
    --step-warmup 0.5 --hgrm "$results/load-b$batch-peak.hgrm" --json \
    >"$peak_json" || true
  peak=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("peak_rate", 0))' "$peak_json" 2>/dev/null || echo 0)
  echo "load.sh: batch $batch: peak $peak req/s"
  [ -s "$results/load-b$batch-peak.hgrm" ] &&
    hgrms+=(--hgrm "batch $batch at peak ($peak req/s)=$results/load-b$batch-peak.hgrm")
  # The sweep: fractions of the peak, or fixed rates when none was found.
  rates=$(/usr/bin/python3 -c '
import sys
p = float(sys.argv[1])
fr = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25]
rs = [p * f for f in fr] if p > 0 else [100, 250, 500, 1000, 2000, 4000]
print(" ".join("%.0f" % max(r, 1) for r in rs))' "$peak")
  for rate in $rates; do
    h=$results/load-b$batch-r$rate.hgrm
    "$load" --server "$addr" --connections "$connections" --batch "$batch" \
      --rate "$rate" --duration "$seconds" --warmup 1 --hgrm "$h" --json \
      >>"$sweep" || echo "load.sh: run at $rate req/s failed" >&2
    tail -n 1 "$sweep" | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print("  batch %3d  offered %9.0f  achieved %9.1f  p50 %8.1f  p99 %9.1f  max %9.1f us  errors %d%s" % (
    r["batch"], r["offered_rate"], r["achieved_rate"], r["p50_us"], r["p99_us"],
    r["max_us"], r["errors"], "" if r["schedule_kept"] else "  (generator fell behind)"))'
  done
  # The distribution at half the peak too (the everyday case), or at the
  # lightest load when no peak was found.
  half=$(/usr/bin/python3 -c 'import sys; p=float(sys.argv[1]); print("%.0f" % (p*0.5) if p > 0 else "")' "$peak")
  if [ -n "$half" ] && [ -f "$results/load-b$batch-r$half.hgrm" ]; then
    hgrms+=(--hgrm "batch $batch at 50% of peak ($half req/s)=$results/load-b$batch-r$half.hgrm")
  else
    first=${rates%% *}
    [ -f "$results/load-b$batch-r$first.hgrm" ] &&
      hgrms+=(--hgrm "batch $batch at $first req/s=$results/load-b$batch-r$first.hgrm")
  fi
done

/usr/bin/python3 bench/plot_load.py --sweep "$sweep" "${hgrms[@]}" \
  --slo-us "1=$slo_b1" --slo-us "64=$slo_b64" --out-dir "$results"

# A table for the README.
/usr/bin/python3 - "$results" "$slo_b1" "$slo_b64" "$model" <<'PY' | tee "$results/load.md"
import json, os, subprocess, sys
res, slo1, slo64, model = sys.argv[1:5]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -n1"],
                     capture_output=True, text=True).stdout.strip()
print("microrecd on %s (model %s), microrec-load on the same machine (%s, %d cores), "
      "loopback, open loop." % (cpu or "?", os.path.basename(os.path.dirname(model)) or model,
                                cpu or "?", os.cpu_count()))
print()
print("| batch | SLO p99 | peak req/s | peak samples/s | p50 us | p99 us | max us |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for b, slo in ((1, slo1), (64, slo64)):
    try:
        j = json.load(open(os.path.join(res, "load-peak-b%d.json" % b)))
    except (OSError, ValueError):
        print("| %d | %s us | (no result) | | | | |" % (b, slo)); continue
    lim = " (client-limited)" if j.get("client_limited") else ""
    print("| %d | %s us | %.0f%s | %.0f | %.1f | %.1f | %.1f |" % (
        b, slo, j.get("peak_rate", 0), lim, j.get("peak_rate", 0) * b,
        j.get("p50_us", 0), j.get("p99_us", 0), j.get("max_us", 0)))
PY
echo "load.sh: results in $results/ (load-percentiles.png, load-distribution.png)"
