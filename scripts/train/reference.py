#!/usr/bin/env python3
"""Reference numbers for a model directory written by train_model.py, computed by transformers on
the GPU, for fp8llm's tests and docs/QUALITY.md:

  reference.json                 perplexity of heldout.txt and heldout-small.txt with the windowing
                                 of windows.py (the definition `fp8llm perplexity` implements):
                                 a BF16 forward (the checkpoint as it is, transformers' default
                                 attention) and an fp32 forward (weights upcast, eager attention,
                                 no TF32: what an engine that computes in fp32 should give); the
                                 token ids of heldout-small.txt; library versions.
  reference_logits.safetensors   `logits` F32 [64, vocab]: the fp32 forward's logits of the first
                                 64 tokens of heldout-small.txt as one sequence (BOS first);
                                 `bf16_logits` F32 [64, vocab]: the same from the BF16 forward;
                                 `ids` I32 [64].

    python3 scripts/train/reference.py --model models/kjv-6m
"""
import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import windows  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="model directory")
    p.add_argument("--files", nargs="+", default=["heldout.txt", "heldout-small.txt"],
                   help="text files to measure (relative to --model unless absolute)")
    p.add_argument("--context", type=int, default=512, help="tokens per window")
    p.add_argument("--stride", type=int, default=256, help="tokens between window starts")
    p.add_argument("--logits-file", default="heldout-small.txt",
                   help="the text whose first --positions tokens' logits are saved")
    p.add_argument("--positions", type=int, default=64)
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    try:
        windows.plan_windows(2, args.context, args.stride)
    except ValueError as e:
        p.error(str(e))
    return args


def ids_sha256(ids):
    """sha256 of the ids as little-endian int32, to compare tokenizations without storing them."""
    return hashlib.sha256(b"".join(int(i).to_bytes(4, "little") for i in ids)).hexdigest()


def load(model_dir, dtype, attention, torch):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation=attention)
    return model.to(dtype=dtype).eval()


def perplexity(model, ids, plan, torch):
    def forward(x):
        return model(input_ids=x[None], use_cache=False).logits[0]

    with torch.no_grad():
        nll, count = windows.windowed_nll(forward, ids, plan)
    return {"nll_sum": nll, "scored": count, "mean_nll": nll / count,
            "perplexity": math.exp(nll / count)}


def main(argv=None):
    args = parse_args(argv)
    t0 = time.monotonic()
    import safetensors
    import tokenizers
    import torch
    import transformers
    from safetensors.torch import save_file

    # The fp32 reference is the exact answer only if matmuls really run in fp32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    models = {
        # The checkpoint as it is, the way transformers runs it by default.
        "bf16": load(args.model, torch.bfloat16, "sdpa", torch).to(args.device),
        # Weights upcast to fp32; eager attention keeps every step in plain fp32 arithmetic.
        "fp32": load(args.model, torch.float32, "eager", torch).to(args.device),
    }

    files = {}
    for name in args.files:
        path = Path(name) if Path(name).is_absolute() else args.model / name
        text = path.read_text(encoding="utf-8")
        ids = tokenizer(text)["input_ids"]
        plan = windows.plan_windows(len(ids), args.context, args.stride)
        ids_t = torch.tensor(ids, device=args.device)
        entry = {"bytes": len(text.encode("utf-8")), "tokens": len(ids), "windows": len(plan),
                 "scored": windows.scored_positions(plan), "ids_sha256": ids_sha256(ids)}
        for kind, model in models.items():
            entry[kind] = perplexity(model, ids_t, plan, torch)
        files[name] = entry
        print(f"{name}: {len(ids)} tokens, {len(plan)} windows, {entry['scored']} scored; "
              f"perplexity bf16 {entry['bf16']['perplexity']:.4f}, "
              f"fp32 {entry['fp32']['perplexity']:.4f}", flush=True)

    path = Path(args.logits_file)
    path = path if path.is_absolute() else args.model / path
    ids = tokenizer(path.read_text(encoding="utf-8"))["input_ids"]
    if len(ids) < args.positions:
        raise SystemExit(f"{path}: {len(ids)} tokens, fewer than --positions {args.positions}")
    head = torch.tensor(ids[:args.positions], device=args.device)
    with torch.no_grad():
        fp32 = models["fp32"](input_ids=head[None], use_cache=False).logits[0].float()
        bf16 = models["bf16"](input_ids=head[None], use_cache=False).logits[0].float()
    rel = float((bf16 - fp32).norm() / fp32.norm())
    logits_path = args.model / "reference_logits.safetensors"
    save_file({"logits": fp32.cpu().contiguous(), "bf16_logits": bf16.cpu().contiguous(),
               "ids": head.to(torch.int32).cpu().contiguous()},
              str(logits_path),
              metadata={"format": "pt", "text": path.name, "positions": str(args.positions),
                        "logits": "fp32 forward, weights upcast from bf16, eager attention",
                        "bf16_logits": "bf16 forward, sdpa attention"})

    small_name = "heldout-small.txt"
    small_path = args.model / small_name
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "safetensors": safetensors.__version__, "cuda": torch.version.cuda,
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    reference = {
        "model": args.model.name,
        "windowing": {
            "context": args.context,
            "stride": args.stride,
            "definition": windows.__doc__.strip(),
        },
        "forward": {
            "bf16": "the BF16 checkpoint as it is, sdpa attention, logits log-softmaxed in fp32",
            "fp32": "weights upcast to fp32, eager attention, TF32 off",
        },
        "files": files,
        "heldout_small_ids": (tokenizer(small_path.read_text(encoding="utf-8"))["input_ids"]
                              if small_path.is_file() else None),
        "logits": {"file": logits_path.name, "text": path.name, "positions": args.positions,
                   "ids": ids[:args.positions], "bf16_vs_fp32_relative_l2": rel},
        "versions": versions,
        "seconds": round(time.monotonic() - t0, 1),
    }
    (args.model / "reference.json").write_text(json.dumps(reference, indent=2) + "\n",
                                               encoding="utf-8")
    print(f"logits of the first {args.positions} tokens of {path.name}: bf16 vs fp32 relative "
          f"L2 {rel:.2e}; wrote {args.model / 'reference.json'} and {logits_path}", flush=True)


if __name__ == "__main__":
    main()
