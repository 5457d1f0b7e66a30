#!/bin/bash
# microrecd under valgrind's memcheck through a whole life: start, load from
# several clients, bad input, a client leaving mid-frame, a reload, a
# failed reload, stop. Fails (exit 1) on any memory error or definite leak
# (valgrind --error-exitcode=1), or if the server does not exit 0.
#
#   tests/valgrind.sh MICRORECD MICROREC
#
# `make valgrind` passes BUILD/bin/microrecd-vg: microrecd linked without
# jemalloc, which memcheck cannot see into.
set -euo pipefail
microrecd=$1 microrec=$2
for b in "$microrecd" "$microrec"; do
  [ -x "$b" ] || { echo "valgrind: $b not built" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "valgrind: not installed" >&2; exit 2; }

dir=$(mktemp -d /tmp/microrec-vg-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "valgrind: FAILED: $*" >&2
  echo "---- server log ----" >&2; tail -30 "$dir/server.log" >&2 || true
  echo "---- valgrind ----" >&2; tail -60 "$dir/valgrind.log" >&2 || true
  exit 1
}
# Waits up to $2 s for the server log to contain $1 ($3 times, default 1).
wait_log() {
  local want=${3:-1}
  for _ in $(seq $(($2 * 10))); do
    [ "$(grep -c -- "$1" "$dir/server.log" || true)" -ge "$want" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "server exited while waiting for '$1'"
    sleep 0.1
  done
  fail "no '$1' in the server log within $2 s"
}

model=$dir/model.safetensors
"$microrec" model gen --preset criteo --max-rows 1000 --seed 1 -o "$model" >/dev/null
cp "$model" "$dir/good.safetensors"
# 100 Criteo rows: 13 integer features, 26 hex ones (ids taken mod the rows).
awk 'BEGIN { srand(7); for (r = 0; r < 100; r++) { printf "%d", r % 2;
  for (i = 0; i < 13; i++) printf "\t%d", int(rand() * 100);
  for (i = 0; i < 26; i++) printf "\t%08x", int(rand() * 2147483647);
  printf "\n" } }' >"$dir/rows.tsv"

valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
  --show-leak-kinds=definite --num-callers=30 --log-file="$dir/valgrind.log" \
  "$microrecd" --model "$model" --listen 127.0.0.1:0 --engine-threads 2 \
  --max-batch 64 --idle-timeout-ms 5000 >"$dir/out" 2>"$dir/server.log" &
pid=$!
port=
for _ in $(seq 3000); do
  port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "the server did not listen within 300 s"
srv=127.0.0.1:$port
echo "valgrind: microrecd (pid $pid) listening on $srv"

infer() { "$microrec" infer --server "$srv" --criteo "$dir/rows.tsv" \
            --timeout-ms 600000 "$@" >"$dir/scores.$RANDOM" || fail "infer $*"; }
# Load: three clients at once, batch sizes 1, 7 and 100 (split by the
# server's max batch of 64).
infer --batch 1 --window 16 & a=$!
infer --batch 7 & b=$!
infer --batch 100 & c=$!
wait $a $b $c
"$microrec" health --server "$srv" >/dev/null || fail "health"
"$microrec" stats --server "$srv" >/dev/null || fail "stats"
"$microrec" remote-info --server "$srv" >/dev/null || fail "remote-info"

# Bad input: a frame of length 0 (answered, then closed), and a client that
# leaves in the middle of a frame.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\0\0\0\0' >&3
timeout 60 cat <&3 >/dev/null || true
exec 3>&-
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\0\0\1\0\010\001\022' >&3
exec 3>&-

# A reload beside the serving model, while a client is busy.
infer --batch 5 & a=$!
kill -HUP "$pid"
wait_log 'model reloaded' 300
wait $a
wait_log 'previous model freed' 120
# A reload that fails (not a model) leaves the old one serving.
printf 'not a model' >"$model"
kill -HUP "$pid"
wait_log 'reload failed' 120
cp "$dir/good.safetensors" "$model"
infer --batch 64

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
grep -E 'in use at exit|All heap blocks|ERROR SUMMARY|definitely lost|indirectly lost' \
  "$dir/valgrind.log" | sed 's/^==[0-9]*== */valgrind: /'
[ "$rc" -eq 0 ] || fail "exit status $rc (1 = memory error or definite leak)"
echo "valgrind: OK (no memory error, no definite leak, exit 0)"
