#!/usr/bin/env bash
# Installs the Debian packages fp8llm needs to build and test. Idempotent, and quiet when they are
# all present; scripts/run-demo.sh and scripts/test.sh call it first. Installing needs root: run as
# root, or as a user with sudo (used only when something is missing). The CUDA toolkit is
# optional: with nvcc in /usr/local/cuda the CUDA backend is compiled too.
set -euo pipefail

packages=(
  # The build and its libraries.
  build-essential cmake ninja-build
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libutf8proc-dev libssl-dev
  # The HTTP server; pkg-config reads the build flags Debian compiled cpp-httplib with.
  libcpp-httplib-dev pkg-config
  # Tests and benchmarks (curl and Node, below, for the server's).
  libgtest-dev libbenchmark-dev curl
  # The Python module and its tests.
  python3-dev pybind11-dev python3-numpy
  # The libFuzzer targets (fuzz/) and their sanitizers.
  clang libclang-rt-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The server's tests run the official OpenAI client for Node. A Node already installed from
# elsewhere (e.g. NodeSource, which bundles npm and conflicts with Debian's npm) is kept.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: missing ${missing[*]}; installing them needs root, and sudo is not here:" \
      "run scripts/install-deps.sh as root" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
