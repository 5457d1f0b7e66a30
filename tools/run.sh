#!/bin/sh
# `make run`: starts microrecd on the bundled default model, on loopback.
# usage: tools/run.sh BUILD_DIR MODEL TESTDATA_DIR
set -eu
build=$1 model=$2 testdata=$3
listen=${MICROREC_LISTEN:-127.0.0.1:7470}
sample=$testdata/criteo-kaggle-1k.tsv
if [ ! -x "$build/bin/microrecd" ]; then
  # No server built yet: score the Criteo sample offline instead.
  echo "run: microrecd is not built; scoring the Criteo sample offline"
  exec "$build/bin/microrec" score "$model" --criteo "$sample"
fi
cat <<MSG
run: starting microrecd on $listen with $model
run: from another terminal, send a request with:
  $build/bin/microrec infer --server $listen --criteo $sample
  $build/bin/microrec stats --server $listen
run: Ctrl-C stops the server (it answers what it accepted, then exits).
MSG
exec "$build/bin/microrecd" --model "$model" --listen "$listen"
