#!/usr/bin/env bash
# Installs what the build needs (scripts/install-deps.sh), builds fp8llm and runs the main job on
# the bundled tiny model: load its BF16 checkpoint with
# on-the-fly FP8 (block) quantization and generate text. (The tiny model's weights are random, so
# the text is meaningless; the point is the whole path from checkpoint to streamed text.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target fp8llm_cli
./build/fp8llm run --model tests/data/tiny-llama --quantization fp8-block \
  --prompt "The quick brown fox" --max-tokens 32
