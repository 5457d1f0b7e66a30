#!/bin/bash
# Server latency benchmark of microrecd (issue 3, "Done when"): on loopback,
# batch-1 requests at low load, in one run,
#  (a) the server's own time, frame fully read -> response handed to the
#      kernel, minus engine time, per request (the server's `server` stage,
#      server/stats.h); target p50 <= 15 us, p99 <= 50 us;
#  (b) the client-observed round trip (microrec-load, closed loop, 1 request
#      in flight, batch 1) beside the floor measured in the same run: a
#      plain blocking TCP echo of the same bytes (bench/echo_floor.c); target
#      p50 <= floor p50 + engine p50 + 20 us, engine from
#      `microrec bench MODEL --batch 1`;
#  (c) the highest rate whose p99 stays under 1 ms (microrec-load
#      --find-peak, batch 1), and the same for batch 64 under its own SLO.
# Beside (c) it measures how late a thread sleeping 1 ms wakes up
# (bench/wake_jitter.c): the machine's own noise under any p99.
# To say where the round trip goes it also measures the floor with the echo
# server spinning the engine's p50 per reply, and microrecd's round trip
# with the smallest blocking client (bench/min_client.c, which also reports
# the frame sizes the echo uses), so the load generator's own cost shows.
# The machine is shared: every run records the load average while it ran,
# and the report is that of the quietest run (lowest mean 1-min load), with
# all runs listed below it. Not part of the test suite.
#
# usage: bench/server_latency.sh [RUNS]       (run from the repository root)
# env:   BUILD (build), TESTDATA (../shared/testdata), MODEL (default: the
#        test data's dlrm-criteo-small, else a generated Criteo-shaped model
#        with --max-rows 4000), RUN_SECONDS (10, per closed-loop and floor
#        measurement), LOW_RATE (1000 req/s, the open-loop low-load check of
#        (a)), SLO_B1_US (1000), SLO_B64_US (5000), PEAK_CONNECTIONS (4),
#        SERVER_FLAGS (extra microrecd flags), PERF (1: perf stat the
#        server during the closed loop: context switches per request),
#        QUIET_BELOW (wait before each run until the 1-min load average is
#        below this, at most QUIET_WAIT seconds, default 600), PIN (none:
#        the scheduler places processes; same: servers and clients of (a)
#        and (b) all on CPU 0; split: servers on CPU 0, clients on CPU 1;
#        on this VM a wake-up on the same CPU costs a few us and one across
#        vCPUs tens of us, and unpinned runs get either; (c) is never
#        pinned), OUT (bench/results/server: the report goes to OUT.md,
#        the runs' data to OUT-runs.jsonl)
# Raw outputs of each run stay in $BUILD/bench/server_latency/runN/.
set -euo pipefail
runs=${1:-3}
build=${BUILD:-build}
testdata=${TESTDATA:-../shared/testdata}
secs=${RUN_SECONDS:-10}
low_rate=${LOW_RATE:-1000}
slo_b1=${SLO_B1_US:-1000}
slo_b64=${SLO_B64_US:-5000}
peak_conns=${PEAK_CONNECTIONS:-4}
out=${OUT:-bench/results/server}
jsonl=$out-runs.jsonl
work=$build/bench/server_latency
mkdir -p "$(dirname "$out")" "$work" bench/models

make -s BUILD="$build" "$build/bin/microrecd" "$build/bin/microrec" \
  "$build/bin/microrec-load" "$build/lib/libmicrorec.a" \
  "$build/lib/libmrengine.a" >/dev/null
cc=${CC:-cc}
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -Wshadow \
  -I. -o "$build/bench/echo_floor" bench/echo_floor.c
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -Wshadow \
  -I. -o "$build/bench/wake_jitter" bench/wake_jitter.c
"$cc" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -I. \
  -I"$build/gen" -o "$build/bench/min_client" bench/min_client.c \
  "$build/lib/libmicrorec.a" "$build/lib/libmrengine.a" -lprotobuf-c -luv \
  -ljansson -lm -lstdc++ -pthread
bin=$build/bin
echo_floor=$build/bench/echo_floor
pin=${PIN:-none}
case $pin in
  none) srv_pin=(); cli_pin=(); floor_pin=() ;;
  same) srv_pin=(taskset -c 0); cli_pin=(taskset -c 0)
        floor_pin=(--server-cpu 0 --client-cpu 0) ;;
  split) srv_pin=(taskset -c 0); cli_pin=(taskset -c 1)
         floor_pin=(--server-cpu 0 --client-cpu 1) ;;
  *) echo "server_latency.sh: PIN must be none, same or split" >&2; exit 2 ;;
esac

model=${MODEL:-$testdata/dlrm-criteo-small/model.safetensors}
if [ ! -f "$model" ]; then
  model=bench/models/criteo-4k.safetensors
  [ -f "$model" ] || "$bin/microrec" model gen --preset criteo \
    --max-rows 4000 --seed 1 -o "$model" >/dev/null
fi

# One microrecd at a time, on an ephemeral loopback port.
server_pid=
sampler_pid=
perf_pid=
cleanup() {
  for p in $perf_pid $sampler_pid $server_pid; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
start_server() { # NAME [PINNED] -> sets addr
  local pfx=()
  [ "${2:-}" = pinned ] && pfx=("${srv_pin[@]}")
  # shellcheck disable=SC2086
  "${pfx[@]}" "$bin/microrecd" --model "$model" --listen 127.0.0.1:0 ${SERVER_FLAGS:-} \
    >"$work/$1.out" 2>"$work/$1.log" &
  server_pid=$!
  addr=
  for _ in $(seq 300); do
    addr=$(sed -n 's/^listening //p' "$work/$1.out" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "server_latency.sh: microrecd did not start; see $work/$1.log" >&2; exit 1; }
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

: >"$jsonl"
for run in $(seq "$runs"); do
  d=$work/run$run
  if [ -n "${QUIET_BELOW:-}" ]; then # wait for the shared machine to calm down
    waited=0
    while awk -v q="$QUIET_BELOW" '{exit !($1 > q)}' /proc/loadavg &&
      [ "$waited" -lt "${QUIET_WAIT:-600}" ]; do
      sleep 5
      waited=$((waited + 5))
    done
  fi
  rm -rf "$d"
  mkdir -p "$d"
  echo "server_latency.sh: run $run of $runs ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  # The 1-min load average, once a second, for the whole run.
  (while :; do cut -d' ' -f1 /proc/loadavg; sleep 1; done) >"$d/loadavg" &
  sampler_pid=$!

  "$bin/microrec" bench "$model" --batch 1 --seconds 3 --warmup 1 --json \
    >"$d/engine.json"
  engine_p50=$(/usr/bin/python3 -c '
import json, sys; print(json.load(open(sys.argv[1]))["p50_us"])' "$d/engine.json")

  # (a) + (b): microrecd in closed loop, one request in flight, then the
  # floor of the same bytes, and the floor with the engine's p50 as a spin.
  start_server closed pinned
  "$build/bench/min_client" "$addr" >"$d/sizes.json"
  read -r req_bytes resp_bytes < <(/usr/bin/python3 -c '
import json, sys; j = json.load(open(sys.argv[1])); print(j["request_bytes"], j["response_bytes"])' "$d/sizes.json")
  if [ "${PERF:-0}" = 1 ]; then
    perf stat -e task-clock,context-switches,cpu-migrations -p "$server_pid" \
      -o "$d/perf-stat.txt" -- sleep $((secs + 1)) &
    perf_pid=$!
  fi
  "${cli_pin[@]}" "$bin/microrec-load" --server "$addr" --connections 1 --concurrency 1 \
    --batch 1 --duration "$secs" --warmup 1 --json >"$d/closed.json"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; perf_pid=; fi
  "$bin/microrec" stats --server "$addr" --json >"$d/closed-stats.json"
  stop_server
  "$echo_floor" --request-bytes "$req_bytes" --response-bytes "$resp_bytes" \
    --seconds "$secs" --warmup 1 "${floor_pin[@]}" --json >"$d/floor.json"
  "$echo_floor" --request-bytes "$req_bytes" --response-bytes "$resp_bytes" \
    --seconds "$secs" --warmup 1 --server-delay-us "$engine_p50" \
    "${floor_pin[@]}" --json >"$d/floor-engine.json"

  # The same round trip with the smallest blocking client (no load
  # generator cost): what the server adds to floor + engine.
  start_server min pinned
  "${cli_pin[@]}" "$build/bench/min_client" "$addr" --seconds "$secs" --warmup 1 \
    >"$d/min-client.json"
  "$bin/microrec" stats --server "$addr" --json >"$d/min-stats.json"
  stop_server

  # (a) again, open loop at a low fixed rate: the loop sleeps between requests.
  start_server open pinned
  "${cli_pin[@]}" "$bin/microrec-load" --server "$addr" --connections 1 --rate "$low_rate" \
    --batch 1 --duration "$secs" --warmup 1 --json >"$d/open.json" 2>"$d/open.err" || true
  "$bin/microrec" stats --server "$addr" --json >"$d/open-stats.json"
  stop_server

  # (c): peak rates under the SLOs, after how late a 1 ms sleep wakes up
  # here now (the noise under any open-loop p99 on this machine).
  "$build/bench/wake_jitter" --sleep-us 1000 --count 2000 --json \
    >"$d/wake.json"
  start_server peak1
  "$bin/microrec-load" --server "$addr" --connections "$peak_conns" --batch 1 \
    --find-peak --slo-p99-us "$slo_b1" --start-rate 250 --step-duration 2 \
    --step-warmup 0.5 --json >"$d/peak-b1.json" 2>"$d/peak-b1.err" || true
  "$bin/microrec" stats --server "$addr" --json >"$d/peak-b1-stats.json"
  stop_server
  start_server peak64
  "$bin/microrec-load" --server "$addr" --connections "$peak_conns" --batch 64 \
    --find-peak --slo-p99-us "$slo_b64" --start-rate 25 --step-duration 2 \
    --step-warmup 0.5 --json >"$d/peak-b64.json" 2>"$d/peak-b64.err" || true
  "$bin/microrec" stats --server "$addr" --json >"$d/peak-b64-stats.json"
  stop_server

  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=
  /usr/bin/python3 bench/server_latency.py run "$d" "$run" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$jsonl"
  /usr/bin/python3 bench/server_latency.py line "$jsonl"
done

/usr/bin/python3 bench/server_latency.py report "$jsonl" \
  --model "$model" --build "$build" --runs "$runs" --secs "$secs" \
  --low-rate "$low_rate" --slo-b1 "$slo_b1" --slo-b64 "$slo_b64" \
  --peak-conns "$peak_conns" --server-flags "${SERVER_FLAGS:-}" --pin "$pin" \
  | tee "$out.md"
