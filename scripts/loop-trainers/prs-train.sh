#!/bin/sh
# A prs loop trainer that runs `prs train` as an external command, the way a GPU trainer is
# plugged in. In a loop config:
#   trainer:
#     command: "sh scripts/loop-trainers/prs-train.sh {data} {base} {init} {out}"
# {data} holds sft.jsonl, refine.jsonl and dpo.jsonl (what to train on this iteration), {base}
# is the base GGUF, {init} the adapter to continue (empty at the first iteration), {out} where
# the adapter must be written. Extra `prs train` flags come from PRS_TRAIN_ARGS; the prs binary
# from PRS (default: prs on the PATH).
set -eu
data=$1 base=$2 init=$3 out=$4
set -- --model "$base" --out "$out" --log "$(dirname "$out")/train.jsonl"
for f in sft refine; do
    if [ -s "$data/$f.jsonl" ]; then set -- "$@" --data "$data/$f.jsonl"; fi
done
if [ -n "$init" ]; then set -- "$@" --init "$init"; fi
# shellcheck disable=SC2086
exec "${PRS:-prs}" train "$@" ${PRS_TRAIN_ARGS:-}
