#!/usr/bin/env bash
# Installs what the build needs (scripts/install-deps.sh), builds fp8llm and runs the main job on
# the bundled model: models/kjv-3m (a small Llama the project trained on the King James Bible,
# models/kjv-3m/README.md), its BF16 checkpoint quantized to FP8 (128x128 blocks) as it loads,
# then text generated from a prompt. The model knows its corpus and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target fp8llm_cli
./build/fp8llm run --model models/kjv-3m --quantization fp8-block \
  --prompt "And it came to pass" --max-tokens 64 --temperature 0.7 --seed 7
