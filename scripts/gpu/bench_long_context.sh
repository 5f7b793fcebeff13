#!/usr/bin/env bash
# Long contexts on the Llama-3-8B shape: one 32,768-token prompt (prefill in chunks of
# --max-batch-tokens, attention on tensor cores), then 128 greedy tokens at 32k keys of context,
# against the decode floor (weights plus the keys and values each step reads). Once for fp8-block
# and once for fp8-row.
#
#   scripts/gpu/bench_long_context.sh FP8LLM MODEL_DIR [BANDWIDTH_GBS]
#
# MODEL_DIR is written by `fp8llm synth --preset llama3-8b --max-positions 131072` when it has no
# config.json; a directory written without --max-positions takes only 8192 positions, too few.
set -uo pipefail
fp8llm=${1:?usage: bench_long_context.sh FP8LLM MODEL_DIR [BANDWIDTH_GBS]}
model=${2:?usage: bench_long_context.sh FP8LLM MODEL_DIR [BANDWIDTH_GBS]}
bandwidth=${3:-4260}
[[ -f $model/config.json ]] ||
  "$fp8llm" synth --preset llama3-8b --max-positions 131072 --out "$model" || exit 1
status=0
for q in fp8-block fp8-row; do
  echo "== $q"
  "$fp8llm" bench --model "$model" --device cuda -q "$q" \
    --max-context 33024 --prompt-tokens 32768 --decode-tokens 128 --loads 1 \
    --bandwidth-gbs "$bandwidth" --quiet || status=1
done
exit $status
