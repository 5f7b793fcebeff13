#!/usr/bin/env bash
# Builds fp8llm and runs the main job on the bundled tiny model.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target fp8llm_cli
./build/fp8llm inspect tests/data/tiny-llama --quantization fp8-block
