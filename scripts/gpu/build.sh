#!/usr/bin/env bash
# Configures (once) and builds fp8llm targets for Hopper in build-gpu, on a machine with the CUDA
# toolkit (and the Python module where Python's headers and pybind11 are found). If .deps/usr
# holds a private copy of the PCRE2 headers and static library (for machines without the system
# package), the build uses it.
#
#   scripts/gpu/build.sh TARGET...     (from the repository root)
set -euo pipefail
BUILD=build-gpu
if [[ ! -f $BUILD/build.ninja ]]; then
  pcre2=()
  if [[ -f .deps/usr/include/pcre2.h ]]; then
    pcre2=(-DPCRE2_INCLUDE_DIR="$PWD/.deps/usr/include"
           -DPCRE2_LIBRARY="$PWD/.deps/usr/lib/x86_64-linux-gnu/libpcre2-8.a")
  fi
  # The Python module: the system's pybind11, else the headers PyTorch ships.
  pybind=()
  if [[ ! -d /usr/include/pybind11 ]]; then
    torch_include=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true)
    [[ -n $torch_include && -d $torch_include/pybind11 ]] && pybind=(-DFP8LLM_PYBIND11_INCLUDE_DIR="$torch_include")
  fi
  cmake -S . -B "$BUILD" -G Ninja -DFP8LLM_BENCH=ON -DFP8LLM_CUDA=ON "${pcre2[@]}" "${pybind[@]}" \
    -DFP8LLM_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" >/dev/null
fi
ninja -C "$BUILD" -j"$(nproc)" "$@"
