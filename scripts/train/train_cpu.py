#!/usr/bin/env python3
"""Trains a small reference model on the King James Bible on the CPU, with numpy alone (no
PyTorch, no `tokenizers`), for machines without a GPU. train_model.py (PyTorch, GPU) trains the
larger kjv-6m; this one trains a smaller model of the same family in about half an hour on two
cores, with the same corpus, splits, special tokens and chat template:

    python3 scripts/train/train_cpu.py --corpus .corpus/kjv.txt --out models/kjv-3m

1. A byte-level BPE tokenizer (bpe.py; Llama-3's pre-tokenizer regex on ASCII text) trained on
   the training chapters only.
2. A Llama model in numpy (numpy_llama.py, float32, its backward pass checked against finite
   differences before training): hidden 256, 4 layers, 4 heads / 2 KV heads of 64, MLP 512,
   vocabulary 2048, RoPE, untied lm_head. Hidden and MLP sizes are multiples of 128 so that
   fp8llm's 128x128 FP8 blocks are whole.
3. AdamW, warm-up then cosine decay, random windows of the training chapters (some from a
   chapter start with the BOS in front, some from chat-formatted verse recitations), a fixed
   seed. The validation chapters' loss picks the checkpoint kept.
4. The output directory, as train_model.py writes it: config.json, model.safetensors (BF16),
   generation_config.json, tokenizer.json, tokenizer_config.json, heldout.txt,
   heldout-small.txt, training.json, README.md; and the reference numbers reference.py would
   write, from the numpy forward pass over the BF16 weights in float32 instead of transformers':
   reference.json (perplexity of heldout.txt and heldout-small.txt with windows.py's windowing)
   and reference_logits.safetensors (`logits` F32 [64, vocab] of heldout-small.txt's first 64
   tokens, `ids` I32 [64]).
"""
import argparse
import hashlib
import json
import math
import random
import re
import shutil
import struct
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bpe  # noqa: E402
import corpus as kjv  # noqa: E402
import numpy_llama as nl  # noqa: E402
import windows  # noqa: E402
from train_model import (BOS, CHAT_TEMPLATE, END_OF_TEXT, IM_END, SPECIAL_TOKENS,  # noqa: E402
                         SPLIT_PATTERN, chat_samples, lr_at, tokenizer_config)

ROOT = HERE.parent.parent
SPECIALS = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT / ".corpus" / "kjv.txt")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "kjv-3m")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--mlp", type=int, default=512)
    p.add_argument("--max-positions", type=int, default=1024)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--seq-len", type=int, default=192)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--bos-fraction", type=float, default=0.125)
    p.add_argument("--chat-fraction", type=float, default=0.1)
    p.add_argument("--evals", type=int, default=15, help="validation evaluations over the run")
    p.add_argument("--eval-tokens", type=int, default=24576,
                   help="validation tokens scored per evaluation")
    p.add_argument("--budget", type=float, default=3600.0,
                   help="wall-clock seconds for training; it stops early to keep it, and says so")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--stride", type=int, default=256)
    p.add_argument("--positions", type=int, default=64)
    args = p.parse_args(argv)
    if args.hidden % 128 or args.mlp % 128:
        p.error("--hidden and --mlp must be multiples of 128 (whole FP8 blocks)")
    if args.heads % args.kv_heads or args.kv_heads >= args.heads:
        p.error("--kv-heads must divide --heads and be fewer (grouped-query attention)")
    return args


def shown(path):
    """A path as the files written record it: relative to the repository when inside it, so that
    they do not name the machine they were made on."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def log(t0, lines, message):
    line = f"[{time.monotonic() - t0:7.1f} s] {message}"
    print(line, flush=True)
    lines.append(line)


def encode(tok, text):
    """Ids of text in which the special tokens stand for themselves (as the engine encodes)."""
    ids = []
    for piece in SPECIALS.split(text):
        if piece in SPECIAL_TOKENS:
            ids.append(SPECIAL_TOKENS.index(piece))
        elif piece:
            ids.extend(tok.encode(piece))
    return ids


def chapter_ids(tok, chapters):
    lengths, parts = [], []
    for c in chapters:
        ids = tok.encode(c.text() + "\n\n")
        parts.append(ids)
        lengths.append(len(ids))
    starts = np.cumsum([0] + lengths[:-1])
    return np.concatenate([np.asarray(x, np.int64) for x in parts]), starts


class AdamW:
    def __init__(self, params, lr, weight_decay, betas=(0.9, 0.95), eps=1e-8):
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps

    def step(self, params, grads, lr):
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        c2 = 1 - self.b2 ** self.t
        for k, g in grads.items():
            m, v, w = self.m[k], self.v[k], params[k]
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            if w.ndim >= 2:
                w *= 1 - lr * self.wd
            w -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def bf16_round(a):
    """float32 values rounded to BF16 (nearest even), as float32, and their bits."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32)
    rounded = ((bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)
    return (rounded.astype(np.uint32) << 16).view(np.float32), rounded


def write_safetensors(path, tensors):
    """name -> numpy array: uint16 as BF16, float32 as F32, int32 as I32."""
    kinds = {np.dtype(np.uint16): "BF16", np.dtype(np.float32): "F32",
             np.dtype(np.int32): "I32"}
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": kinds[array.dtype], "shape": list(array.shape),
                        "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def validation_loss(model, ids, seq_len, limit, batch=16):
    n = min((len(ids) - 1) // seq_len, max(1, limit // seq_len))
    total = 0.0
    for i in range(0, n, batch):
        rows = np.arange(i, min(n, i + batch))[:, None] * seq_len + np.arange(seq_len)
        loss, _ = model.loss_and_grads(ids[rows], ids[rows + 1], want_grads=False)
        total += loss * len(rows)
    return total / n


def windowed_perplexity(model, ids, context, stride):
    plan = windows.plan_windows(len(ids), context, stride)
    nll, count = 0.0, 0
    for begin, end, first in plan:
        logits = model.logits(ids[begin:end]).astype(np.float64)
        rows = np.arange(first - 1 - begin, end - 1 - begin)
        z = logits[rows]
        z = z - z.max(axis=-1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        nll += float(-lp[np.arange(len(rows)), ids[first:end]].sum())
        count += end - first
    return {"nll_sum": nll, "scored": count, "mean_nll": nll / count,
            "perplexity": math.exp(nll / count), "windows": len(plan)}


def ids_sha256(ids):
    return hashlib.sha256(b"".join(int(i).to_bytes(4, "little") for i in ids)).hexdigest()


def greedy(model, tok_ids, n):
    ids = list(tok_ids)
    for _ in range(n):
        ids.append(int(np.argmax(model.logits(ids)[-1])))
    return ids


def decode(tok, ids):
    inverse = {v: k for k, v in tok.vocab.items()}
    back = {c: b for b, c in bpe.BYTES.items()}
    data = b"".join(bytes(back[ch] for ch in inverse[i]) for i in ids if i >= len(SPECIAL_TOKENS))
    return data.decode("utf-8", errors="replace")


def main(argv=None):
    args = parse_args(argv)
    t0 = time.monotonic()
    lines = []
    say = lambda m: log(t0, lines, m)  # noqa: E731
    out = args.out.resolve()
    if out.exists() and not args.force:
        raise SystemExit(f"{out} exists (--force replaces it)")
    worst = nl.check_gradients()
    say(f"backward pass against finite differences: worst relative error {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("the backward pass disagrees with finite differences")
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)

    chapters = kjv.read_chapters(args.corpus)
    splits = kjv.split_chapters(chapters)
    say(f"corpus {shown(args.corpus)}: " + ", ".join(f"{k} {len(v)} chapters" for k, v in splits.items()))
    tok = bpe.train([c.text() for c in splits["train"]], args.vocab, SPECIAL_TOKENS)
    vocab = len(SPECIAL_TOKENS) + len(tok.vocab)
    say(f"tokenizer: {vocab} tokens ({len(tok.merges)} merges)")
    train_ids, starts = chapter_ids(tok, splits["train"])
    val_ids, _ = chapter_ids(tok, splits["validation"])
    chat = np.concatenate([np.asarray(encode(tok, t), np.int64)
                           for t in chat_samples(splits["train"], random.Random(args.seed))])
    say(f"tokens: train {len(train_ids)}, validation {len(val_ids)}, chat {len(chat)}")

    shape = nl.Shape(vocab=args.vocab, hidden=args.hidden, layers=args.layers, heads=args.heads,
                     kv_heads=args.kv_heads, head_dim=args.head_dim, mlp=args.mlp,
                     rope_theta=args.rope_theta)
    params = nl.init_params(shape, rng)
    model = nl.Model(shape, params)
    n_params = sum(v.size for v in params.values())
    say(f"model: {n_params} parameters ({2 * n_params / 1e6:.2f} MB in BF16)")
    opt = AdamW(params, args.lr, args.weight_decay)
    T = args.seq_len
    n_chat = round(args.batch * args.chat_fraction)
    n_bos = round(args.batch * args.bos_fraction)
    n_text = args.batch - n_chat - n_bos
    starts = starts[starts + T <= len(train_ids)]
    eval_every = max(10, args.steps // max(1, args.evals))
    best = {"loss": math.inf, "step": 0, "params": None}
    history = []
    total = args.steps
    deadline = t0 + args.budget
    step = 0
    t_train = time.monotonic()
    while step < total:
        if time.monotonic() > deadline:
            say(f"WARNING: budget reached at step {step} of {total}; stopping")
            break
        rows = []
        begin = rng.integers(0, len(train_ids) - T - 1, n_text)
        rows += [train_ids[b:b + T + 1] for b in begin]
        for s in rng.choice(starts, n_bos):
            rows.append(np.concatenate([[SPECIAL_TOKENS.index(BOS)], train_ids[s:s + T]]))
        begin = rng.integers(0, len(chat) - T - 1, n_chat)
        rows += [chat[b:b + T + 1] for b in begin]
        batch = np.stack(rows)
        loss, grads = model.loss_and_grads(batch[:, :-1], batch[:, 1:])
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
        if norm > 1.0:
            for g in grads.values():
                g *= 1.0 / norm
        lr = lr_at(args, step, total)
        opt.step(params, grads, lr)
        step += 1
        if step == 5:
            per_step = (time.monotonic() - t_train) / 5
            say(f"{per_step:.2f} s per step: {total} steps take about {total * per_step / 60:.0f}"
                " min")
        if step % eval_every == 0 or step == total:
            val = validation_loss(model, val_ids, T, args.eval_tokens)
            mark = ""
            if val < best["loss"]:
                best = {"loss": val, "step": step,
                        "params": {k: v.copy() for k, v in params.items()}}
                mark = " (best)"
            history.append({"step": step, "train_loss": round(loss, 4),
                            "validation_loss": round(val, 4), "lr": lr})
            say(f"step {step}/{total}: train loss {loss:.4f}, validation loss {val:.4f}{mark}, "
                f"lr {lr:.2e}")
    if best["params"] is not None:
        params.update(best["params"])
    # What is saved is BF16: the reference numbers come from the rounded weights.
    bits = {}
    for k in params:
        params[k], bits[k] = bf16_round(params[k])

    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_safetensors(partial / "model.safetensors", bits)
    ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": args.vocab, "hidden_size": args.hidden, "intermediate_size": args.mlp,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads, "head_dim": args.head_dim,
        "max_position_embeddings": args.max_positions, "rms_norm_eps": shape.eps,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "attention_dropout": 0.0, "tie_word_embeddings": False, "initializer_range": 0.02,
        "rope_theta": args.rope_theta, "rope_scaling": None, "torch_dtype": "bfloat16",
        "bos_token_id": ids[BOS], "eos_token_id": ids[IM_END], "pad_token_id": ids[END_OF_TEXT],
        "use_cache": True,
    }
    (partial / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (partial / "generation_config.json").write_text(json.dumps({
        "bos_token_id": ids[BOS], "eos_token_id": [ids[IM_END], ids[END_OF_TEXT]],
        "pad_token_id": ids[END_OF_TEXT]}, indent=2) + "\n")
    (partial / "tokenizer.json").write_text(
        json.dumps(tok.to_json(SPLIT_PATTERN, BOS), ensure_ascii=False) + "\n", encoding="utf-8")
    (partial / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(args.max_positions), indent=2) + "\n")
    heldout, heldout_small, heldout_chapters = kjv.heldout_excerpts(splits["heldout"])
    (partial / "heldout.txt").write_text(heldout, encoding="utf-8")
    (partial / "heldout-small.txt").write_text(heldout_small, encoding="utf-8")

    sample_ids = greedy(model, [ids[BOS]] + tok.encode("In the beginning"), 40)
    sample = decode(tok, sample_ids)
    say(f"greedy sample: {sample!r}")
    files = {}
    for name, text in (("heldout.txt", heldout), ("heldout-small.txt", heldout_small)):
        tids = np.asarray([ids[BOS]] + tok.encode(text), np.int64)
        entry = {"bytes": len(text.encode()), "tokens": len(tids), "ids_sha256": ids_sha256(tids)}
        entry["fp32"] = windowed_perplexity(model, tids, args.context, args.stride)
        files[name] = entry
        say(f"{name}: {len(tids)} tokens, perplexity {entry['fp32']['perplexity']:.4f} "
            f"(numpy, float32 over the BF16 weights)")
    head = np.asarray([ids[BOS]] + tok.encode(heldout_small), np.int64)[:args.positions]
    write_safetensors(partial / "reference_logits.safetensors", {
        "logits": model.logits(head).astype(np.float32), "ids": head.astype(np.int32)})
    reference = {"made_by": "scripts/train/train_cpu.py (numpy forward pass, float32 over the "
                            "BF16 weights)",
                 "context": args.context, "stride": args.stride, "files": files,
                 "logits": {"file": "heldout-small.txt", "positions": args.positions},
                 "versions": {"python": sys.version.split()[0], "numpy": np.__version__}}
    (partial / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")
    info = {
        "corpus": shown(args.corpus), "trainer": "scripts/train/train_cpu.py (numpy, CPU)",
        "splits": {k: len(v) for k, v in splits.items()}, "heldout_chapters": heldout_chapters,
        "tokens": {"train": len(train_ids), "validation": len(val_ids), "chat": len(chat)},
        "parameters": n_params, "settings": {k: (shown(v) if isinstance(v, Path) else v)
                                             for k, v in vars(args).items()},
        "training": {"steps": step, "best_step": best["step"],
                     "best_validation_loss": best["loss"], "history": history},
        "greedy_sample": sample, "gradient_check_worst_relative_error": worst,
        "seconds": round(time.monotonic() - t0, 1), "log": lines,
    }
    (partial / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    ppl = files["heldout.txt"]["fp32"]["perplexity"]
    (partial / "README.md").write_text(f"""# {out.name}

A small Llama-architecture model trained by fp8llm's `scripts/train/train_cpu.py` (numpy, on a
CPU) on the King James Bible, so that the engine's FP8 modes can be measured on a model with
real activations (docs/QUALITY.md) and its demo prints text that reads like its corpus. It knows
nothing else.

- Corpus: the King James Version (1611), from the Debian package `bible-kjv-text`
  (scripts/train/fetch_corpus.sh); public domain.
- Split by chapter (scripts/train/corpus.py): every 20th chapter is held out (never trained on,
  not even by the tokenizer); `heldout.txt` and `heldout-small.txt` are excerpts of it.
- LlamaForCausalLM: hidden {args.hidden}, {args.layers} layers, {args.heads} heads /
  {args.kv_heads} KV heads of {args.head_dim}, MLP {args.mlp}, vocabulary {args.vocab}, RoPE
  theta {args.rope_theta:g}, untied lm_head: {n_params} parameters, BF16.
- Tokenizer: byte-level BPE (Llama-3 pre-tokenizer regex); `{BOS}` in front of text; ChatML chat
  template, replies end with `{IM_END}`.
- Training: {step} steps of {args.batch} x {args.seq_len} tokens, seed {args.seed}; best
  validation loss {best['loss']:.4f} at step {best['step']}.
- Held-out perplexity (numpy float32 forward over the BF16 weights, context {args.context},
  stride {args.stride}): {ppl:.3f}. `reference.json` and `reference_logits.safetensors` hold the
  reference numbers the tests compare fp8llm with.
""")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
