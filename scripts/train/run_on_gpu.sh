#!/usr/bin/env bash
# Trains the reference model and computes its transformers reference numbers, on a machine with
# one CUDA GPU, PyTorch, transformers, tokenizers, safetensors and numpy (no network needed):
#
#   scripts/train/run_on_gpu.sh [OUT_DIR] [train_model.py flags...]
#
# OUT_DIR defaults to models/kjv-6m. The corpus is .corpus/kjv.txt (or $CORPUS), written by
# scripts/train/fetch_corpus.sh on a machine with apt and carried here. Takes about 2 minutes on
# an H200 (30 epochs at about 50 ms per step of 32768 tokens, then reference.py's two forward
# passes over the held-out text); --budget (240 s for the whole of train_model.py) bounds it on
# a slower GPU. An existing OUT_DIR is replaced.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-models/kjv-6m}
shift || true
corpus=${CORPUS:-.corpus/kjv.txt}
if [[ ! -f $corpus ]]; then
  echo "run_on_gpu: $corpus is missing: run scripts/train/fetch_corpus.sh on a machine with apt" \
    "and carry .corpus/ here" >&2
  exit 2
fi
# Nothing may be fetched: everything comes from the corpus and the installed libraries.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true

python3 -c 'import torch, transformers, tokenizers, safetensors, numpy
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, safetensors {safetensors.__version__}")
assert torch.cuda.is_available(), "no CUDA device"
print(torch.cuda.get_device_name())'

start=$SECONDS
python3 scripts/train/train_model.py --corpus "$corpus" --out "$out" --force "$@"
python3 scripts/train/reference.py --model "$out"

python3 - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
t = json.loads((out / "training.json").read_text())
r = json.loads((out / "reference.json").read_text())
print(f"\n== {out}")
for p in sorted(out.iterdir()):
    print(f"  {p.name:32s} {p.stat().st_size:>10d} bytes")
print(f"parameters {t['parameters']}, steps {t['training']['steps']} "
      f"(best validation loss {t['training']['best_validation_loss']:.4f} at step "
      f"{t['training']['best_step']}), train_model.py {t['seconds']} s")
w = r["windowing"]
for name, f in r["files"].items():
    print(f"{name}: {f['tokens']} tokens, {f['scored']} scored (context {w['context']}, stride "
          f"{w['stride']}): perplexity bf16 {f['bf16']['perplexity']:.4f}, "
          f"fp32 {f['fp32']['perplexity']:.4f}")
print(f"greedy sample: {t['greedy_sample']!r}")
PY
echo "total $((SECONDS - start)) s"
