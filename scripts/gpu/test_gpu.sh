#!/usr/bin/env bash
# Builds the GPU tests (ctest label gpu) on a machine with an NVIDIA GPU and runs them, keeping the
# logs (build.log, tests.log) and printing the measured errors the tests report.
#
#   scripts/gpu/test_gpu.sh [LOG_DIR]   (from the repository root; LOG_DIR defaults to $OUT, else
#                                        build-gpu/logs)
set -uo pipefail

LOG_DIR=${1:-${OUT:-build-gpu/logs}}
BUILD=build-gpu
mkdir -p "$LOG_DIR"

pcre2=()
if [[ -f .deps/usr/include/pcre2.h ]]; then
  pcre2=(-DPCRE2_INCLUDE_DIR="$PWD/.deps/usr/include"
         -DPCRE2_LIBRARY="$PWD/.deps/usr/lib/x86_64-linux-gnu/libpcre2-8.a")
fi
stems=$(ls tests/cuda | sed -n 's/^test_\(.*\)\.cpp$/\1/p')
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  cmake -S . -B "$BUILD" -G Ninja -DFP8LLM_BENCH=ON -DFP8LLM_CUDA=ON "${pcre2[@]}" \
    -DFP8LLM_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" &&
    time ninja -C "$BUILD" -j16 fp8llm_cli $(for t in $stems; do echo "test_cuda_$t"; done)
} >"$LOG_DIR/build.log" 2>&1 || { echo "BUILD FAILED"; grep -E 'error|FAILED' "$LOG_DIR/build.log" | head -40; exit 1; }
head -2 "$LOG_DIR/build.log"
status=0
for t in $stems; do
  timeout 300 "$BUILD/tests/cuda/test_cuda_$t" --gtest_color=no >>"$LOG_DIR/tests.log" 2>&1 || status=1
done
grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|rel L2|token-by-token' "$LOG_DIR/tests.log"
[[ $status == 0 ]] || { echo "TESTS FAILED"; grep -B2 -A10 'Failure' "$LOG_DIR/tests.log" | head -100; }
exit $status
