#!/usr/bin/env bash
# Load and speed benchmark on a machine with an NVIDIA GPU: builds fp8llm, writes a random BF16
# checkpoint with the Llama-3-8B shape (16 GB), warms the page cache, then
#   stream   the page cache -> device path alone (fp8llm bench --stream-only), over a few shares
#            of read and registered chunks and reader counts, after the device-stream unit test;
#   full     fp8llm bench --device cuda for fp8-row, fp8-block and none, and transformers'
#            from_pretrained + generate on the same directory (scripts/gpu/bench_transformers.py);
#   cold     the checkpoint dropped from the page cache: the disk's own sequential read (dd with
#            O_DIRECT), then a load from the disk (fp8-block).
#
#   [BIN=DIR] scripts/gpu/bench_load.sh [stream|full|cold|all] [LOG_DIR]
#
# From the repository root; LOG_DIR defaults to $OUT, else build-gpu/logs. BIN names a build
# directory made elsewhere for this GPU (its fp8llm and tests/cuda/test_cuda_device_stream are used
# as they are, with the libraries in DIR/../lib where that exists); otherwise this builds one.
set -uo pipefail

MODE=${1:-all}
LOG_DIR=${2:-${OUT:-build-gpu/logs}}
MODEL=${MODEL:-/tmp/l8b}
BUILD=build-gpu
mkdir -p "$LOG_DIR"
status=0

if [[ -n ${BIN:-} ]]; then
  BUILD=$BIN
  [[ -d $BIN/../lib ]] && export LD_LIBRARY_PATH=$(cd "$BIN/../lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOG_DIR/build.log"
else
  pcre2=()
  if [[ -f .deps/usr/include/pcre2.h ]]; then
    pcre2=(-DPCRE2_INCLUDE_DIR="$PWD/.deps/usr/include"
           -DPCRE2_LIBRARY="$PWD/.deps/usr/lib/x86_64-linux-gnu/libpcre2-8.a")
  fi
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    nproc; free -g
    cmake -S . -B "$BUILD" -G Ninja -DFP8LLM_BENCH=OFF -DFP8LLM_CUDA=ON "${pcre2[@]}" \
      -DFP8LLM_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" &&
      time ninja -C "$BUILD" -j16 fp8llm_cli test_cuda_device_stream
  } >"$LOG_DIR/build.log" 2>&1 || { echo "BUILD FAILED"; tail -40 "$LOG_DIR/build.log"; exit 1; }
  head -3 "$LOG_DIR/build.log"
fi
FP8LLM=$BUILD/fp8llm

if [[ ! -f $MODEL/config.json ]]; then
  /usr/bin/time -f "synth: %e s" "$FP8LLM" synth --preset llama3-8b --out "$MODEL" 2>&1 | tail -2
fi
# Warm the page cache: the load is then limited by memory copies and PCIe, not by the disk.
/usr/bin/time -f "page-cache warm-up: %e s" cat "$MODEL"/*.safetensors >/dev/null
du -sh "$MODEL"

if [[ $MODE == stream || $MODE == all ]]; then
  "$BUILD/tests/cuda/test_cuda_device_stream" --gtest_color=no 2>&1 | tee "$LOG_DIR/test_device_stream.log" |
    grep -E '^\[  (PASSED|FAILED|SKIPPED|  OK) |Failure' || status=1
  grep -q 'FAILED' "$LOG_DIR/test_device_stream.log" && status=1
  for q in fp8-block none; do
    # Share of the chunks read into the page-locked slots (the rest registered), readers.
    for cfg in "0 16" "0.5 16" "1 16" "0.5 8" "1 8"; do
      read -r share readers <<<"$cfg"
      "$FP8LLM" bench --model "$MODEL" --stream-only --quantization "$q" --repeat 2 \
        --pread-share "$share" --readers "$readers" 2>&1 |
        tee -a "$LOG_DIR/stream.log" || status=1
    done
  done
fi

if [[ $MODE == full || $MODE == all ]]; then
  for q in fp8-row fp8-block none; do
    "$FP8LLM" bench --model "$MODEL" --device cuda --quantization "$q" --prompt-tokens 512 \
      --decode-tokens 128 2>&1 | tee -a "$LOG_DIR/bench.log" || status=1
  done
  PYTHONUNBUFFERED=1 python3 scripts/gpu/bench_transformers.py --model "$MODEL" \
    --prompt-tokens 512 --decode-tokens 128 2>&1 | tee "$LOG_DIR/transformers.log" || status=1
fi
if [[ $MODE == cold || $MODE == all ]]; then
  # Drop the checkpoint's pages (clean pages of files nothing maps: fadvise DONTNEED, which dd's
  # nocache flag issues), and say how much of it is still cached where fincore is there.
  evict() {
    for f in "$MODEL"/*.safetensors; do dd if="$f" iflag=nocache count=0 status=none; done
    command -v fincore >/dev/null && fincore "$MODEL"/*.safetensors | tail -n +2 | head -4
  }
  {
    evict
    echo "disk, sequential reads with O_DIRECT (64 MiB blocks):"
    for f in "$MODEL"/*.safetensors; do
      dd if="$f" of=/dev/null bs=64M iflag=direct 2>&1 | tail -1
    done
    evict
    "$FP8LLM" bench --model "$MODEL" --device cuda --quantization fp8-block --prompt-tokens 16 \
      --decode-tokens 8 --loads 1
    # Warm again for whatever runs next.
    cat "$MODEL"/*.safetensors >/dev/null
  } 2>&1 | tee "$LOG_DIR/cold.log" || status=1
fi
exit $status
