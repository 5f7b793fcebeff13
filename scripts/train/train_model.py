#!/usr/bin/env python3
"""Trains fp8llm's small reference model on the King James Bible (.corpus/kjv.txt, written by
scripts/train/fetch_corpus.sh; public domain, see that script) and writes it as an ordinary
Hugging Face model directory.

    python3 scripts/train/train_model.py --corpus .corpus/kjv.txt --out models/kjv-6m

1. A byte-level BPE tokenizer (tokenizers; Llama-3's pre-tokenizer regex, 4096 tokens, four
   special tokens for a ChatML chat template) trained on the training chapters only.
2. A Llama model (transformers' LlamaForCausalLM: hidden 256, 6 layers, 4 heads / 2 KV heads of
   64, MLP 512, RoPE, untied lm_head; 5.6M parameters, 11.3 MB in BF16). Hidden and MLP sizes are
   multiples of 128 so that fp8llm's 128x128 FP8 blocks are whole; the MLP is 512 rather than
   768 to keep six layers within 12 MB (a 4096 x 256 embedding and lm_head take 4.2 MB).
3. Training: AdamW, linear warm-up then cosine decay, bf16 autocast, residual dropout, random
   windows of the training chapters (some starting at a chapter with the BOS in front, some from
   chat-formatted verse recitations so that the chat template means something). The number of
   steps is fixed by --epochs; the wall-clock --budget (the whole script, default 240 s) only cuts
   it when the GPU is too slow, and says so. The validation chapters' loss picks the checkpoint
   kept. Splits: corpus.py.
4. Output (--out): config.json, model.safetensors (BF16), generation_config.json, tokenizer.json,
   tokenizer_config.json (chat_template, bos/eos), heldout.txt (held-out chapters, <= 200 KB),
   heldout-small.txt (about 8 KB of it), training.json (settings, losses, versions) and README.md.
   The directory is written under <out>.partial and renamed when complete.
"""
import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import corpus as kjv  # noqa: E402
import windows  # noqa: E402

ROOT = HERE.parent.parent

BOS, END_OF_TEXT, IM_START, IM_END = (
    "<|begin_of_text|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")
SPECIAL_TOKENS = [BOS, END_OF_TEXT, IM_START, IM_END]
# Llama-3's pre-tokenizer split (fp8llm's tokenizer runs the same regex through PCRE2).
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# ChatML with the BOS in front, in the plain Jinja that every template engine runs.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
                 "{{ message['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def render_chat(messages, add_generation_prompt):
    """CHAT_TEMPLATE in Python, for the training samples (checked against transformers)."""
    text = BOS
    for m in messages:
        text += f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n"
    if add_generation_prompt:
        text += f"{IM_START}assistant\n"
    return text


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", type=Path, default=ROOT / ".corpus" / "kjv.txt",
                   help="kjv.txt written by scripts/train/fetch_corpus.sh")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "kjv-6m",
                   help="model directory to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--budget", type=float, default=240.0,
                   help="wall-clock seconds for the whole script; training stops early to keep it")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--device", default="cuda")
    g = p.add_argument_group("tokenizer and model")
    g.add_argument("--vocab", type=int, default=4096)
    g.add_argument("--hidden", type=int, default=256)
    g.add_argument("--layers", type=int, default=6)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--kv-heads", type=int, default=2)
    g.add_argument("--head-dim", type=int, default=64)
    g.add_argument("--mlp", type=int, default=512)
    g.add_argument("--max-positions", type=int, default=1024)
    g.add_argument("--rope-theta", type=float, default=10000.0)
    g.add_argument("--max-bytes", type=int, default=12_000_000,
                   help="largest BF16 model.safetensors allowed")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=float, default=30.0,
                   help="passes over the training tokens; fixes the number of steps")
    t.add_argument("--steps", type=int, default=0, help="optimizer steps (overrides --epochs)")
    t.add_argument("--batch", type=int, default=64, help="sequences per step")
    t.add_argument("--seq-len", type=int, default=512)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--min-lr-ratio", type=float, default=0.1)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--dropout", type=float, default=0.1,
                   help="dropout on each attention and MLP output before the residual add")
    t.add_argument("--bos-fraction", type=float, default=0.125,
                   help="share of sequences that start at a chapter with the BOS in front")
    t.add_argument("--chat-fraction", type=float, default=0.1,
                   help="share of sequences taken from chat-formatted verse recitations")
    t.add_argument("--evals", type=int, default=30, help="validation evaluations over the run")
    e = p.add_argument_group("held-out loss at the end (the windowing of windows.py)")
    e.add_argument("--context", type=int, default=512)
    e.add_argument("--stride", type=int, default=256)
    args = p.parse_args(argv)
    if args.hidden % 128 or args.mlp % 128:
        p.error("--hidden and --mlp must be multiples of 128 (whole FP8 blocks)")
    if args.heads % args.kv_heads or args.kv_heads >= args.heads:
        p.error("--kv-heads must divide --heads and be fewer (grouped-query attention)")
    if args.seq_len + 1 > args.max_positions or args.context > args.max_positions:
        p.error("--seq-len and --context must fit in --max-positions")
    return args


class Log:
    def __init__(self, t0):
        self.t0 = t0
        self.lines = []

    def __call__(self, message):
        line = f"[{time.monotonic() - self.t0:7.1f} s] {message}"
        print(line, flush=True)
        self.lines.append(line)


def train_tokenizer(texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B:1", special_tokens=[(BOS, bos_id)])
    return tok


def tokenizer_config(max_positions):
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": IM_END,
        "pad_token": END_OF_TEXT,
        "model_max_length": max_positions,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def encode_chapters(tok, chapters, np):
    """Token ids of the chapters as kjv.txt joins them, and where each chapter starts."""
    encodings = tok.encode_batch([c.text() + "\n\n" for c in chapters], add_special_tokens=False)
    # The pre-tokenizer never joins a newline to the letter after it, so encoding chapter by
    # chapter gives the ids of the joined text.
    lengths = [len(e.ids) for e in encodings]
    starts = np.cumsum([0] + lengths[:-1])
    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
    return ids, starts


def chat_samples(chapters, rng):
    """Conversations asking for verses by reference ("Genesis 1:3-4") and answering with them."""
    texts = []
    for c in chapters:
        for _ in range(max(1, len(c.verses) // 6)):
            first = rng.randrange(len(c.verses))
            last = min(len(c.verses), first + rng.randint(1, 3))
            ref = f"{c.heading}:{first + 1}" + (f"-{last}" if last > first + 1 else "")
            messages = [{"role": "user", "content": ref},
                        {"role": "assistant", "content": " ".join(c.verses[first:last])}]
            texts.append(render_chat(messages, add_generation_prompt=False))
    rng.shuffle(texts)
    return texts


def build_model(args, vocab, special_ids):
    import inspect

    import transformers

    # transformers 5 spells RoPE settings as rope_parameters; 4.x as rope_theta.
    if "rope_parameters" in inspect.signature(transformers.LlamaConfig.__init__).parameters:
        rope = {"rope_parameters": {"rope_type": "default", "rope_theta": args.rope_theta}}
    else:
        rope = {"rope_theta": args.rope_theta}
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=args.hidden,
        intermediate_size=args.mlp,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim,
        max_position_embeddings=args.max_positions,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        tie_word_embeddings=False,
        initializer_range=0.02,
        bos_token_id=special_ids[BOS],
        eos_token_id=special_ids[IM_END],
        pad_token_id=special_ids[END_OF_TEXT],
        attn_implementation="sdpa",
        **rope,
    )
    return transformers.LlamaForCausalLM(config)


def add_residual_dropout(model, p):
    """Dropout on each attention and MLP output (GPT-2's residual dropout), as hooks: the saved
    checkpoint and config know nothing of it. The KJV is about 1M tokens, so the model sees each
    one many times; dropout and weight decay keep it from learning the text by heart."""
    import torch.nn.functional as F

    if p <= 0:
        return []

    def hook(module, inputs, output):
        return F.dropout(output, p, module.training)

    handles = []
    for layer in model.model.layers:
        handles.append(layer.self_attn.o_proj.register_forward_hook(hook))
        handles.append(layer.mlp.register_forward_hook(hook))
    return handles


class Batches:
    """Random training sequences of seq_len + 1 tokens, drawn on the device."""

    def __init__(self, args, train_ids, chapter_starts, chat_ids, bos_id, torch, device):
        self.torch = torch
        self.T = args.seq_len
        self.train = torch.as_tensor(train_ids, device=device)
        self.chat = torch.as_tensor(chat_ids, device=device)
        starts = torch.as_tensor(chapter_starts, device=device)
        self.chapter_starts = starts[starts + self.T <= len(train_ids)]
        self.bos = torch.full((1, 1), bos_id, dtype=torch.int64, device=device)
        self.n_chat = round(args.batch * args.chat_fraction)
        self.n_bos = round(args.batch * args.bos_fraction)
        self.n_text = args.batch - self.n_chat - self.n_bos
        if self.n_text <= 0:
            raise SystemExit("--bos-fraction + --chat-fraction leave no plain text sequences")
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(args.seed)
        self.offsets = torch.arange(self.T + 1, device=device)

    def _windows(self, stream, n, length):
        torch = self.torch
        begin = torch.randint(0, len(stream) - length + 1, (n, 1), device=stream.device,
                              generator=self.gen)
        return stream[begin + self.offsets[:length]]

    def next(self):
        torch = self.torch
        rows = [self._windows(self.train, self.n_text, self.T + 1)]
        if self.n_bos:
            pick = torch.randint(0, len(self.chapter_starts), (self.n_bos, 1),
                                 device=self.train.device, generator=self.gen)
            body = self.train[self.chapter_starts[pick] + self.offsets[:self.T]]
            rows.append(torch.cat([self.bos.expand(self.n_bos, 1), body], dim=1))
        if self.n_chat:
            rows.append(self._windows(self.chat, self.n_chat, self.T + 1))
        batch = torch.cat(rows, dim=0)
        return batch[:, :-1], batch[:, 1:]


def lr_at(args, step, total):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    low = args.lr * args.min_lr_ratio
    return low + 0.5 * (args.lr - low) * (1 + math.cos(math.pi * progress))


def validation_loss(model, ids, seq_len, torch, device, batch=64):
    """Mean NLL over disjoint windows of the validation chapters."""
    import torch.nn.functional as F

    n = (len(ids) - 1) // seq_len
    data = torch.as_tensor(ids[:n * seq_len + 1], device=device)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(0, n, batch):
            rows = torch.arange(i, min(n, i + batch), device=device)[:, None] * seq_len
            x = data[rows + torch.arange(seq_len, device=device)]
            y = data[rows + 1 + torch.arange(seq_len, device=device)]
            logits = model(input_ids=x, use_cache=False).logits.float()
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


def train(args, model, batches, val_ids, tokens_per_epoch, deadline, log, torch):
    import torch.nn.functional as F

    device = args.device
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    tokens_per_step = args.batch * args.seq_len
    total = args.steps or math.ceil(args.epochs * tokens_per_epoch / tokens_per_step)
    planned = total
    log(f"training: {total} steps of {tokens_per_step} tokens "
        f"({total * tokens_per_step / tokens_per_epoch:.1f} epochs of {tokens_per_epoch} tokens)")
    eval_every = max(10, total // max(1, args.evals))
    probe = (5, 25)  # steps timed to check that the run fits in the budget
    history, best = [], {"loss": math.inf, "step": 0, "state": None}
    model.train()
    step = 0
    t_probe = None
    while step < total:
        if step == probe[0]:
            torch.cuda.synchronize()
            t_probe = time.monotonic()
        if step == probe[1]:
            torch.cuda.synchronize()
            per_step = (time.monotonic() - t_probe) / (probe[1] - probe[0])
            # Validation passes and the last save take the rest; 0.9 leaves room for them.
            fits = step + int((deadline - time.monotonic()) * 0.9 / per_step)
            log(f"{per_step * 1000:.1f} ms per step: {total} steps take about "
                f"{total * per_step:.0f} s")
            if fits < total:
                log(f"WARNING: the budget holds {fits} steps, not {total}: the schedule is "
                    "shortened and the result differs from the default run")
                total = fits
                eval_every = max(10, total // max(1, args.evals))
        if time.monotonic() > deadline:
            log(f"WARNING: budget reached at step {step} of {total}; stopping")
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(args, step, total)
        x, y = batches.next()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % eval_every == 0 or step == total:
            val = validation_loss(model, val_ids, args.seq_len, torch, device)
            history.append({"step": step, "train_loss": round(loss.item(), 4),
                            "validation_loss": round(val, 4), "lr": opt.param_groups[0]["lr"]})
            mark = ""
            if val < best["loss"]:
                best = {"loss": val, "step": step,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                mark = " (best)"
            log(f"step {step}/{total}: train loss {loss.item():.4f}, validation loss "
                f"{val:.4f}{mark}, lr {opt.param_groups[0]['lr']:.2e}")
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return {"planned_steps": planned, "steps": step, "best_step": best["step"],
            "best_validation_loss": best["loss"], "history": history}


def greedy(model, tok, prompt, n, torch, device):
    ids = torch.tensor([tok.encode(prompt).ids], device=device)
    with torch.no_grad():
        for _ in range(n):
            next_id = model(input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return tok.decode(ids[0].tolist(), skip_special_tokens=True)


def save_model(model, out, torch):
    model.to(torch.bfloat16)
    try:
        model.save_pretrained(out, safe_serialization=True)
    except TypeError:  # transformers 5 always writes safetensors and dropped the argument
        model.save_pretrained(out)
    weights = out / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{out}: save_pretrained wrote no model.safetensors "
                         f"({sorted(p.name for p in out.iterdir())})")
    return weights.stat().st_size


def verify(out, tok, heldout_small, args, log, torch):
    """Loads the directory back the way a user would and checks what fp8llm relies on."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ids = tokenizer(heldout_small)["input_ids"]
    if ids != tok.encode(heldout_small).ids or ids[0] != tok.token_to_id(BOS):
        raise SystemExit("AutoTokenizer does not reproduce the trained tokenizer's ids")
    if tokenizer.decode(ids, skip_special_tokens=True) != heldout_small:
        raise SystemExit("the tokenizer does not decode heldout-small.txt back to itself")
    if tokenizer.eos_token_id != tok.token_to_id(IM_END):
        raise SystemExit(f"eos_token_id {tokenizer.eos_token_id}, expected {IM_END}")
    messages = [{"role": "system", "content": "Answer in the words of the King James Bible."},
                {"role": "user", "content": "Genesis 1:1"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if rendered != render_chat(messages, add_generation_prompt=True):
        raise SystemExit(f"the chat template renders {rendered!r}")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    theta = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta"))
    if theta != args.rope_theta:
        raise SystemExit(f"config.json has RoPE theta {theta}, not {args.rope_theta}")
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    model.to(device=args.device, dtype=torch.bfloat16).eval()
    if model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        raise SystemExit("lm_head is tied to the embedding; it must be its own tensor")
    heldout = (out / "heldout.txt").read_text(encoding="utf-8")
    heldout_ids = torch.tensor(tokenizer(heldout)["input_ids"], device=args.device)
    plan = windows.plan_windows(len(heldout_ids), args.context, args.stride)
    with torch.no_grad():
        nll, count = windows.windowed_nll(
            lambda x: model(input_ids=x[None], use_cache=False).logits[0], heldout_ids, plan)
    log(f"held-out loss (heldout.txt, BF16, context {args.context}, stride {args.stride}): "
        f"{nll / count:.4f} over {count} tokens, perplexity {math.exp(nll / count):.3f}")
    return {"heldout_tokens": len(heldout_ids), "heldout_scored": count,
            "heldout_loss_bf16": nll / count, "heldout_perplexity_bf16": math.exp(nll / count)}


def model_card(args, info):
    a = info["architecture"]
    return f"""# {args.out.name}

A small Llama-architecture model trained by fp8llm's `scripts/train/train_model.py` on the King
James Bible, so that the engine's FP8 modes can be measured on a model with real activations
(perplexity and KL divergence: docs/QUALITY.md). It writes text that reads like its corpus; it
knows nothing else.

- Corpus: the King James Version (1611), from the Debian package `bible-kjv-text`
  (scripts/train/fetch_corpus.sh). Its copyright has expired; the text is in the public domain.
- Split by chapter (scripts/train/corpus.py): every 20th chapter is held out (never trained on,
  not even by the tokenizer); `heldout.txt` ({info['heldout_bytes']} bytes, {len(info['heldout_chapters'])} chapters)
  and `heldout-small.txt` ({info['heldout_small_bytes']} bytes) are excerpts of it. Another 5% picked the checkpoint.
- Architecture: LlamaForCausalLM, hidden {a['hidden']}, {a['layers']} layers, {a['heads']} heads /
  {a['kv_heads']} KV heads of {a['head_dim']}, MLP {a['mlp']}, vocabulary {a['vocab']}, RoPE theta
  {a['rope_theta']:g}, untied lm_head: {info['parameters']} parameters, BF16.
- Tokenizer: byte-level BPE (Llama-3 pre-tokenizer regex); BOS `{BOS}` added in front of text;
  ChatML chat template, replies end with `{IM_END}`.
- Training: {info['training']['steps']} steps of {args.batch} x {args.seq_len} tokens, seed {args.seed}; best
  validation loss {info['training']['best_validation_loss']:.4f} at step {info['training']['best_step']}.
- Held-out perplexity (transformers, BF16, context {args.context}, stride {args.stride}):
  {info['verify']['heldout_perplexity_bf16']:.3f}. reference.py writes the reference numbers.

Settings, losses and library versions: `training.json`.
"""


def main(argv=None):
    args = parse_args(argv)
    t0 = time.monotonic()
    deadline = t0 + args.budget - 20  # saving and checking the directory take the rest
    log = Log(t0)

    import numpy as np
    import tokenizers
    import torch
    import transformers

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: training runs on a GPU")
    out = args.out.resolve()
    if out.exists() and not args.force:
        raise SystemExit(f"{out} exists (--force replaces it)")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    chapters = kjv.read_chapters(args.corpus)
    splits = kjv.split_chapters(chapters)
    log(f"corpus {args.corpus}: " + ", ".join(f"{k} {len(v)} chapters" for k, v in splits.items()))

    tok = train_tokenizer([c.text() for c in splits["train"]], args.vocab)
    if tok.get_vocab_size(with_added_tokens=True) > args.vocab:
        raise SystemExit(f"tokenizer has {tok.get_vocab_size()} tokens, more than --vocab")
    special_ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    log(f"tokenizer: {tok.get_vocab_size(with_added_tokens=True)} tokens, special {special_ids}")

    train_ids, chapter_starts = encode_chapters(tok, splits["train"], np)
    val_ids, _ = encode_chapters(tok, splits["validation"], np)
    chat_texts = chat_samples(splits["train"], random.Random(args.seed))
    chat_ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in
                               tok.encode_batch(chat_texts, add_special_tokens=False)])
    log(f"tokens: train {len(train_ids)}, validation {len(val_ids)}, chat samples "
        f"{len(chat_texts)} ({len(chat_ids)} tokens)")

    torch.manual_seed(args.seed)
    model = build_model(args, args.vocab, special_ids)
    parameters = sum(p.numel() for p in model.parameters())
    if 2 * parameters > args.max_bytes:
        raise SystemExit(f"{parameters} parameters are {2 * parameters} bytes in BF16, more than "
                         f"--max-bytes {args.max_bytes}")
    log(f"model: {parameters} parameters ({2 * parameters / 1e6:.2f} MB in BF16)")
    model.to(args.device)
    hooks = add_residual_dropout(model, args.dropout)
    batches = Batches(args, train_ids, chapter_starts, chat_ids, special_ids[BOS], torch,
                      args.device)
    training = train(args, model, batches, val_ids, len(train_ids), deadline, log, torch)
    for h in hooks:
        h.remove()
    model.eval()
    sample = greedy(model, tok, "In the beginning", 40, torch, args.device)
    log(f"greedy sample: {sample!r}")

    size = save_model(model, partial, torch)
    (partial / "generation_config.json").unlink(missing_ok=True)
    transformers.GenerationConfig(
        bos_token_id=special_ids[BOS], eos_token_id=[special_ids[IM_END], special_ids[END_OF_TEXT]],
        pad_token_id=special_ids[END_OF_TEXT]).save_pretrained(partial)
    tok.save(str(partial / "tokenizer.json"))
    (partial / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(args.max_positions), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    heldout, heldout_small, heldout_chapters = kjv.heldout_excerpts(splits["heldout"])
    (partial / "heldout.txt").write_text(heldout, encoding="utf-8")
    (partial / "heldout-small.txt").write_text(heldout_small, encoding="utf-8")
    if size > args.max_bytes:
        raise SystemExit(f"model.safetensors is {size} bytes, more than --max-bytes")

    info = {
        "corpus": str(args.corpus),
        "splits": {"rule": "chapters numbered 0..1188 in Bible order: i % 20 == 19 held out, "
                           "i % 20 == 9 validation (picks the checkpoint), the rest train",
                   **{k: len(v) for k, v in splits.items()}},
        "heldout_chapters": heldout_chapters,
        "heldout_bytes": len(heldout.encode("utf-8")),
        "heldout_small_bytes": len(heldout_small.encode("utf-8")),
        "tokens": {"train": len(train_ids), "validation": len(val_ids), "chat": len(chat_ids)},
        "architecture": {k: getattr(args, k) for k in
                         ("vocab", "hidden", "layers", "heads", "kv_heads", "head_dim", "mlp",
                          "max_positions", "rope_theta")},
        "parameters": parameters,
        "model_bytes": size,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "training": training,
        "greedy_sample": sample,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__,
                     "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name()},
    }
    info["verify"] = verify(partial, tok, heldout_small, args, log, torch)
    info["seconds"] = round(time.monotonic() - t0, 1)
    info["log"] = log.lines
    (partial / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (partial / "README.md").write_text(model_card(args, info), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    log(f"wrote {out} ({size} bytes of weights) in {info['seconds']} s")


if __name__ == "__main__":
    main()
