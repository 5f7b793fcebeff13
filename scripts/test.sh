#!/usr/bin/env bash
# Installs what the build needs (scripts/install-deps.sh), builds fp8llm (with its Python module
# and its HTTP server) and runs every test that this machine can run (GPU tests skip without a
# GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFP8LLM_PYTHON=ON -DFP8LLM_SERVER=ON
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
