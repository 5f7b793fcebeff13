#!/usr/bin/env bash
# Builds the CUDA backend's tests and GEMM benchmark on a machine with an NVIDIA GPU, runs the GPU
# tests, then bench_gemm (Llama-3-8B shapes, and the small-M sweep) and the torch._scaled_mm
# comparison, keeping every log (build.log, tests.log, sanitizer.log, bench_*.log, bench_*.csv).
# Where compute-sanitizer is installed, the GPU tests also run under its memcheck tool.
#
#   scripts/gpu/check_cuda.sh [LOG_DIR]      (from the repository root; LOG_DIR defaults to $OUT,
#                                             else build-gpu/logs)
#
# Builds for sm_90a only (Hopper). If .deps/usr holds a private copy of the PCRE2 headers and static
# library (for machines without the system package), the build uses it.
set -uo pipefail

LOG_DIR=${1:-${OUT:-build-gpu/logs}}
mkdir -p "$LOG_DIR"
BUILD=build-gpu
status=0

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
} >"$LOG_DIR/build.log" 2>&1

pcre2=()
if [[ -f .deps/usr/include/pcre2.h ]]; then
  pcre2=(-DPCRE2_INCLUDE_DIR="$PWD/.deps/usr/include"
         -DPCRE2_LIBRARY="$PWD/.deps/usr/lib/x86_64-linux-gnu/libpcre2-8.a")
fi

targets=(test_cuda_runtime test_cuda_weight_quant test_cuda_act_quant test_cuda_gemm bench_gemm)
{
  cmake -S . -B "$BUILD" -G Ninja -DFP8LLM_BENCH=ON -DFP8LLM_CUDA=ON "${pcre2[@]}" \
    -DFP8LLM_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" &&
    time ninja -C "$BUILD" -j16 "${targets[@]}"
} >>"$LOG_DIR/build.log" 2>&1 || { echo "BUILD FAILED"; tail -40 "$LOG_DIR/build.log"; exit 1; }
head -7 "$LOG_DIR/build.log"
echo "build ok"

for t in runtime weight_quant act_quant gemm; do
  exe="$BUILD/tests/cuda/test_cuda_$t"
  "$exe" --gtest_color=no >>"$LOG_DIR/tests.log" 2>&1 || status=1
done
grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\] .* ran|^(cuBLASLt|model\.|device:)' \
  "$LOG_DIR/tests.log"
[[ $status == 0 ]] || { echo "TESTS FAILED"; grep -B2 -A12 'Failure' "$LOG_DIR/tests.log" | head -120; }

if command -v compute-sanitizer >/dev/null; then
  for t in weight_quant act_quant gemm; do
    compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 3 "$BUILD/tests/cuda/test_cuda_$t" \
      --gtest_color=no >>"$LOG_DIR/sanitizer.log" 2>&1 || status=1
  done
  grep -E 'ERROR SUMMARY|^\[  (PASSED|FAILED) ' "$LOG_DIR/sanitizer.log"
fi

"$BUILD/bench/bench_gemm" --csv "$LOG_DIR/bench_gemm.csv" >"$LOG_DIR/bench_gemm.log" 2>&1 || status=1
cat "$LOG_DIR/bench_gemm.log"

"$BUILD/bench/bench_gemm" --small-m >"$LOG_DIR/bench_small_m.log" 2>&1 || status=1
cat "$LOG_DIR/bench_small_m.log"

PYTHONUNBUFFERED=1 python3 scripts/gpu/bench_scaled_mm.py --csv "$LOG_DIR/bench_scaled_mm.csv" \
  >"$LOG_DIR/bench_scaled_mm.log" 2>&1 || status=1
cat "$LOG_DIR/bench_scaled_mm.log"
exit $status
