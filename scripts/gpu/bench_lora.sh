#!/usr/bin/env bash
# LoRA's cost on the GPU (docs/PERFORMANCE.md, "LoRA on the FP8 base"): decode throughput with
# rank-R adapters on all seven projections against the base model, at batch 1 (one adapter) and
# at batch 64 (four adapters taken in turn by the requests), in fp8-block and fp8-row, each pair
# measured back to back in this process's order on this card. Prints one line per pair with the
# share (goal: at least 85%).
#
#   scripts/gpu/bench_lora.sh FP8LLM MODEL_DIR [RANK] > lora.log
#
# MODEL_DIR is an 8B-shaped checkpoint (`fp8llm synth --preset llama3-8b`); the adapters are
# written next to it as MODEL_DIR-loraI.
set -uo pipefail
fp8llm=$1 model=$2 rank=${3:-16}
for i in 0 1 2 3; do
  [[ -d $model-lora$i ]] ||
    "$fp8llm" synth --preset llama3-8b --lora-rank "$rank" --seed $((i + 5)) --out "$model-lora$i" ||
    exit 1
done
four="--lora a=$model-lora0 --lora b=$model-lora1 --lora c=$model-lora2 --lora d=$model-lora3"
# The number a run prints: decode tok/s at batch 1, output tok/s with --concurrency.
rate() {
  "$fp8llm" bench --model "$model" --device cuda --max-context 4096 --loads 1 \
    --bandwidth-gbs 4260 "$@" 2>&1 |
    awk '/^decode /{r=$4} /^throughput /{r=$2} END{print r+0}'
}
for q in fp8-block fp8-row; do
  one="-q $q --prompt-tokens 128 --decode-tokens 512"
  many="-q $q --concurrency 64 --num-prompts 256 --input-len 128 --output-len 128"
  base=$(rate $one) lora=$(rate $one --lora "$model-lora0")
  awk -v q=$q -v b="$base" -v l="$lora" 'BEGIN{printf "%s batch 1: base %.1f, one adapter %.1f tok/s: %.1f%%\n", q, b, l, (b > 0 ? 100 * l / b : 0)}'
  base=$(rate $many) lora=$(rate $many $four)
  awk -v q=$q -v b="$base" -v l="$lora" 'BEGIN{printf "%s batch 64: base %.1f, four adapters %.1f tok/s: %.1f%%\n", q, b, l, (b > 0 ? 100 * l / b : 0)}'
done
