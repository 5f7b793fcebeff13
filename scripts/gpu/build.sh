#!/usr/bin/env bash
# Configures (once) and builds fp8llm targets for Hopper in build-gpu, on a machine with the CUDA
# toolkit (and the Python module where Python's headers and pybind11 are found). Libraries the
# machine lacks (PCRE2, utf8proc, OpenSSL's libcrypto, cpp-httplib with pkgconf to read its flags)
# are taken from .deps/usr, a copy unpacked from the Debian packages (git-ignored), where it holds
# them. WERROR=OFF keeps warnings from failing the build.
#
#   [WERROR=OFF] scripts/gpu/build.sh TARGET...     (from the repository root)
set -euo pipefail
BUILD=build-gpu
lib=$PWD/.deps/usr/lib/x86_64-linux-gnu
# cpp-httplib from .deps: its flags through pkgconf, looking at .deps alone (a re-configure during
# the build needs the same environment, so it is set on every call).
if [[ ! -f /usr/include/httplib.h && -f .deps/usr/include/httplib.h ]]; then
  export PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$PWD/.deps
  export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  command -v pkg-config >/dev/null || export PKG_CONFIG=$PWD/.deps/usr/bin/pkgconf
fi
if [[ ! -f $BUILD/build.ninja ]]; then
  deps=()
  if [[ ! -f /usr/include/pcre2.h && -f .deps/usr/include/pcre2.h ]]; then
    deps+=(-DPCRE2_INCLUDE_DIR="$PWD/.deps/usr/include" -DPCRE2_LIBRARY="$lib/libpcre2-8.a")
  fi
  if [[ ! -f /usr/include/utf8proc.h && -f .deps/usr/include/utf8proc.h ]]; then
    deps+=(-DUTF8PROC_INCLUDE_DIR="$PWD/.deps/usr/include" -DUTF8PROC_LIBRARY="$lib/libutf8proc.a")
  fi
  if [[ ! -f /usr/include/openssl/evp.h && -f .deps/usr/include/openssl/evp.h ]]; then
    # Debian puts configuration.h in the multiarch directory, which the compiler searches only
    # under /usr.
    deps+=(-DOPENSSL_ROOT_DIR="$PWD/.deps/usr" -DOPENSSL_USE_STATIC_LIBS=TRUE
           -DOPENSSL_CRYPTO_LIBRARY="$lib/libcrypto.a"
           -DCMAKE_CXX_FLAGS="-isystem $PWD/.deps/usr/include/x86_64-linux-gnu")
  fi
  # The Python module: the system's pybind11, else the headers PyTorch ships.
  if [[ ! -d /usr/include/pybind11 ]]; then
    torch_include=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true)
    [[ -n $torch_include && -d $torch_include/pybind11 ]] && deps+=(-DFP8LLM_PYBIND11_INCLUDE_DIR="$torch_include")
  fi
  cmake -S . -B "$BUILD" -G Ninja -DFP8LLM_BENCH=ON -DFP8LLM_CUDA=ON -DFP8LLM_WERROR="${WERROR:-ON}" \
    "${deps[@]}" -DFP8LLM_CUDA_GENCODE="-gencode=arch=compute_90a,code=sm_90a" >/dev/null
fi
ninja -C "$BUILD" -j"$(nproc)" "$@"
