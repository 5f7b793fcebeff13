#!/usr/bin/env bash
# One pass on a GPU machine: trains the reference model in the background (when .corpus/ is
# there and models/kjv-6m is not), builds the CLI and the GPU tests, runs the tests with a time
# limit each, then measures the trained model's perplexity in every mode. Logs go to LOG_DIR.
#
#   [BIN=DIR] [BUDGET=SECONDS] [TESTS="STEM..."] [QUALITY=0] [BENCH=1] [LORA=1] [KERNELS=1] \
#     [LONG=1] [TEST_SECONDS=150] scripts/gpu/validate.sh [LOG_DIR]
#
# From the repository root; LOG_DIR defaults to $OUT. BIN names a build directory made on another
# machine for this GPU (fp8llm, tests/cuda/test_cuda_*, tests/server/test_server_load): those are
# used as they are (with the shared libraries in DIR/../lib, when that exists), and only the Python
# module is built here, beside the tests. BUDGET bounds the
# whole pass: a step that would run past it is cut short or skipped, so that the logs come back.
# TESTS names the tests/cuda/test_STEM.cpp to run (all by default); QUALITY=0 skips perplexity.
# LORA=1 measures LoRA's cost against the base model and the adapter replace from CUDA tensors,
# and times the shrink and expand kernels against their floors (bench/bench_lora).
# KERNELS=1 times the attention kernels against their floors (bench/bench_attention). LONG=1 runs
# a 32k-token prompt and decodes at that context (scripts/gpu/bench_long_context.sh).
set -uo pipefail
LOG=${1:-${OUT:-build-gpu/logs}}
mkdir -p "$LOG"
start=$SECONDS
budget=${BUDGET:-100000}
# Seconds a step may take: its own limit, or what is left of the budget less a reserve.
limit() {
  local reserve=${2:-15}
  ((reserve > budget / 3)) && reserve=$((budget / 3))
  local left=$((budget - (SECONDS - start) - reserve))
  ((left < $1)) && echo $((left > 0 ? left : 1)) || echo "$1"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv |
  tee "$LOG/summary.log"
train=""
if [[ -f .corpus/kjv.txt && ! -d models/kjv-6m ]]; then
  (scripts/train/run_on_gpu.sh models/kjv-6m >"$LOG/train.log" 2>&1
   echo "train exit $?" >>"$LOG/train.log") &
  train=$!
fi
# The batching tests first: they are the newest.
stems=${TESTS:-"cuda_batching prefill_attention $(ls tests/cuda | sed -n 's/^test_\(.*\)\.cpp$/\1/p' |
  grep -vE '^(cuda_batching|prefill_attention)$')"}
# Warnings are reported, not fatal, in this one pass: a newer compiler's new warning must not cost
# the run.
WERROR=OFF scripts/gpu/build.sh -t targets all >"$LOG/targets.log" 2>&1 || true
has_target() { grep -q "^$1:" "$LOG/targets.log"; }
python_build=""
run=()
if [[ -n ${BIN:-} ]]; then
  bin=$BIN
  # Only the binaries from BIN see its libraries: Python keeps the machine's own.
  [[ -d $BIN/../lib ]] && run=(env "LD_LIBRARY_PATH=$(cd "$BIN/../lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  if has_target fp8llm_python; then
    WERROR=OFF scripts/gpu/build.sh fp8llm_python >"$LOG/build.log" 2>&1 &
    python_build=$!
  fi
else
  bin=build-gpu
  extra=()
  for t in fp8llm_python test_server_load; do has_target "$t" && extra+=("$t"); done
  [[ -n ${KERNELS:-} ]] && has_target bench_attention && extra+=(bench_attention)
  [[ -n ${LORA:-} ]] && has_target bench_lora && extra+=(bench_lora)
  if ! WERROR=OFF scripts/gpu/build.sh fp8llm_cli "${extra[@]}" \
      $(for t in $stems; do echo "test_cuda_$t"; done) >"$LOG/build.log" 2>&1; then
    echo "BUILD FAILED" | tee -a "$LOG/summary.log"
    grep -E 'error|FAILED' "$LOG/build.log" | head -40 | tee -a "$LOG/summary.log"
  fi
  echo "build $((SECONDS - start)) s, $(grep -c 'warning:' "$LOG/build.log") warnings" |
    tee -a "$LOG/summary.log"
fi
for t in $stems; do
  exe=$bin/tests/cuda/test_cuda_$t
  [[ -x $exe ]] || continue
  t0=$SECONDS
  timeout "$(limit "${TEST_SECONDS:-150}" 240)" "${run[@]}" "$exe" --gtest_color=no >>"$LOG/tests.log" 2>&1
  echo "test_cuda_$t exit $? ($((SECONDS - t0)) s)" | tee -a "$LOG/summary.log"
done
grep -E '^\[  FAILED  \]' "$LOG/tests.log" | sort -u | tee -a "$LOG/summary.log"
if [[ -n $python_build ]]; then
  wait "$python_build"
  echo "python module build exit $? at $((SECONDS - start)) s" | tee -a "$LOG/summary.log"
  grep -E 'error|FAILED' "$LOG/build.log" | head -20 | tee -a "$LOG/summary.log"
fi
if [[ -d build-gpu/python/fp8llm ]]; then
  for t in tests/python/test_cuda_*.py; do
    (cd tests/python && PYTHONPATH=$OLDPWD/build-gpu/python FP8LLM_TEST_DATA=$OLDPWD/tests/data \
      timeout "$(limit "${TEST_SECONDS:-150}" 200)" python3 -m unittest "$(basename "$t" .py)") \
      >>"$LOG/tests.log" 2>&1
    echo "python $(basename "$t") exit $?" | tee -a "$LOG/summary.log"
  done
fi
if [[ -n $train ]]; then
  wait "$train"
  tail -12 "$LOG/train.log" | tee -a "$LOG/summary.log"
fi
[[ -d models/kjv-6m ]] && tar -cf "$LOG/kjv-6m.tar" models/kjv-6m
for m in kjv-3m kjv-6m; do
  [[ -d models/$m && -x $bin/fp8llm && ${QUALITY:-1} != 0 ]] || continue
  for q in none fp8-row fp8-block; do
    for g in fp32 tensor-core; do
      echo "== $m $q $g" >>"$LOG/quality.log"
      timeout "$(limit 60 120)" "${run[@]}" "$bin/fp8llm" perplexity --model "models/$m" \
        --file "models/$m/heldout.txt" --quantization "$q" --device cuda --fp8-gemm "$g" \
        >>"$LOG/quality.log" 2>&1
    done
  done
done
grep -iE '^==|perplexity' "$LOG/quality.log" 2>/dev/null | head -40 | tee -a "$LOG/summary.log"
if [[ -x $bin/fp8llm && -n ${BENCH:-} ]]; then
  # Serving throughput on the Llama-3-8B shape (random weights), at two of TensorRT-LLM's
  # published lengths, and one stream.
  timeout 60 "${run[@]}" "$bin/fp8llm" synth --preset llama3-8b --out /tmp/llama3-8b >"$LOG/bench.log" 2>&1
  for args in "--concurrency 256 --num-prompts 1000 --input-len 128 --output-len 128" \
              "--concurrency 1 --num-prompts 2 --input-len 128 --output-len 256" \
              "--concurrency 256 --num-prompts 256 --input-len 2048 --output-len 128"; do
    echo "== $args" >>"$LOG/bench.log"
    timeout "$(limit 100)" "${run[@]}" "$bin/fp8llm" bench --model /tmp/llama3-8b --device cuda -q fp8-block \
      --max-context 4096 --loads 1 --bandwidth-gbs 4260 $args >>"$LOG/bench.log" 2>&1
  done
  grep -E '^==|^throughput|^ttft|^itl|^step floor|^kv cache' "$LOG/bench.log" | tee -a "$LOG/summary.log"
  # Served against offline (docs/PERFORMANCE.md): the server needs a tokenizer, the load test
  # sends token ids.
  if [[ -x $bin/tests/server/test_server_load ]]; then
    cp tests/data/tiny-llama/tokenizer.json tests/data/tiny-llama/tokenizer_config.json /tmp/llama3-8b/
    for clients in 256 1; do
      echo "== served, $clients clients" >>"$LOG/bench.log"
      FP8LLM_LOAD_MODEL=/tmp/llama3-8b FP8LLM_LOAD_SERVER_ARGS="--device cuda -q fp8-block" \
        FP8LLM_LOAD_CLIENTS=$clients FP8LLM_LOAD_INPUT_LEN=128 FP8LLM_LOAD_OUTPUT_LEN=128 \
        timeout "$(limit 120)" "${run[@]}" "$bin/tests/server/test_server_load" >>"$LOG/bench.log" 2>&1
    done
  fi
  # The weight sync of a training loop: all 8B parameters from BF16 CUDA tensors.
  if [[ -d build-gpu/python/fp8llm ]]; then
    echo "== weight sync" >>"$LOG/bench.log"
    PYTHONPATH=build-gpu/python timeout "$(limit 150)" python3 scripts/gpu/bench_weight_sync.py \
      --model /tmp/llama3-8b --quantization fp8-block fp8-row --repeats 3 >>"$LOG/bench.log" 2>&1
  fi
  grep -E '^==|tokens/s|TTFT|sync|wake' "$LOG/bench.log" | tail -30 | tee -a "$LOG/summary.log"
fi
if [[ -x $bin/fp8llm && -n ${LORA:-} ]]; then
  [[ -d /tmp/llama3-8b ]] ||
    timeout 60 "${run[@]}" "$bin/fp8llm" synth --preset llama3-8b --out /tmp/llama3-8b >"$LOG/lora.log" 2>&1
  timeout "$(limit 300)" "${run[@]}" scripts/gpu/bench_lora.sh "$bin/fp8llm" /tmp/llama3-8b >>"$LOG/lora.log" 2>&1
  if [[ -d build-gpu/python/fp8llm ]]; then
    PYTHONPATH=build-gpu/python timeout "$(limit 120)" python3 scripts/gpu/bench_lora_sync.py \
      --model /tmp/llama3-8b --lora /tmp/llama3-8b-lora0 >>"$LOG/lora.log" 2>&1
  fi
  if [[ -x $bin/bench/bench_lora ]]; then
    timeout "$(limit 60)" "${run[@]}" "$bin/bench/bench_lora" >>"$LOG/lora.log" 2>&1
  fi
  grep -E 'batch|replace|effect|^(group|q/k/v|o|gate/up|down) ' "$LOG/lora.log" |
    tee -a "$LOG/summary.log"
fi
if [[ -n ${KERNELS:-} && -x $bin/bench/bench_attention ]]; then
  timeout "$(limit 180)" "${run[@]}" "$bin/bench/bench_attention" >"$LOG/attention.log" 2>&1
  echo "bench_attention exit $?" | tee -a "$LOG/summary.log"
  tee -a "$LOG/summary.log" <"$LOG/attention.log"
fi
if [[ -x $bin/fp8llm && -n ${LONG:-} ]]; then
  timeout "$(limit 400)" "${run[@]}" scripts/gpu/bench_long_context.sh "$bin/fp8llm" /tmp/llama3-8b \
    >"$LOG/long.log" 2>&1
  echo "bench_long_context exit $?" | tee -a "$LOG/summary.log"
  grep -E '^==|^prefill|^decode' "$LOG/long.log" | tee -a "$LOG/summary.log"
fi
echo "validate $((SECONDS - start)) s" | tee -a "$LOG/summary.log"
