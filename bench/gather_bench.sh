#!/bin/sh
# Builds and runs bench/gather_bench.c: random-row gather cost against table
# size, the measurement behind the cpu target (fpga/target.c).
#   bench/gather_bench.sh [max_mib] [row_bytes]
set -eu
here=$(dirname "$0")
out=${BUILD:-build}/bench
mkdir -p "$out"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$out/gather_bench" "$here/gather_bench.c"
exec "$out/gather_bench" "$@"
