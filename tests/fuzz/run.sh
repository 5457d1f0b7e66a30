#!/bin/bash
# Runs each libFuzzer target for a bounded time: tests/fuzz/run.sh
# FUZZ_BUILD SECONDS TARGET... (what `make fuzz` calls). The corpus grows in
# FUZZ_BUILD/corpus/<target> (seeded from tests/fuzz/corpus/<target>);
# a crash is written to FUZZ_BUILD/artifacts/ and fails the run. Prints the
# final executions and coverage of each target.
set -euo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/artifacts"
status=0
for t in "$@"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
         -max_len=16384 -print_final_stats=1
         -artifact_prefix="$build/artifacts/$t-")
  [ -f "$here/$t.dict" ] && flags+=(-dict="$here/$t.dict")
  log="$build/$t.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  if "$build/bin/$t" "${flags[@]}" "$corpus" "$here/corpus/$t" >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true
    grep -E 'stat::number_of_executed_units' "$log" || true
  else
    status=1
    echo "fuzz: $t FAILED; the input is in $build/artifacts/$t-*:"
    grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -20 || true
  fi
done
exit $status
