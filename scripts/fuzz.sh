#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with AddressSanitizer and UndefinedBehaviorSanitizer)
# and runs each for a bounded time: scripts/fuzz.sh [SECONDS] (30 by default, per target).
#
# Each target starts from its seed corpus in fuzz/corpus/<name>/ (only read) and keeps what it
# finds in build-fuzz/corpus/<name>/, so later runs on this machine go on from there. A crash,
# a sanitizer report, an input slower than 10 s or one using more than 2 GiB stops the run: the
# input is saved under build-fuzz/artifacts/ and the script exits non-zero. docs/FUZZING.md has
# the targets and what they found.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
targets=(safetensors_header model_config tokenizer chat_template quantization_config
  openai_request peft_adapter)
corpus_of() { [ "$1" = safetensors_header ] && echo safetensors || echo "$1"; }

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DFP8LLM_FUZZ=ON -DFP8LLM_CUDA=OFF \
  -DBUILD_TESTING=OFF -DFP8LLM_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$(corpus_of "$t")"
  found="build-fuzz/corpus/$t"
  mkdir -p "$found"
  dict=()
  [ -f "fuzz/$(corpus_of "$t").dict" ] && dict=(-dict="fuzz/$(corpus_of "$t").dict")
  echo "fuzz: $t for ${seconds} s"
  log="build-fuzz/fuzz_$t.log"
  status=0
  build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" "${dict[@]}" \
    "$found" "$seeds" >"$log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t found a failing input (build-fuzz/artifacts/$t-*; log $log)" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds} s without a failure"
