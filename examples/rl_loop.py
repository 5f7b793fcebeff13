#!/usr/bin/env python3
"""A reinforcement-learning loop with fp8llm as its rollout engine (needs a CUDA GPU, PyTorch and
transformers).

A PyTorch copy of a small model (a Hugging Face directory, e.g. tests/data/tiny-llama) is trained
with REINFORCE on a toy reward computed from fp8llm's rollouts: the number of times a chosen token
appears in a completion. After every optimizer step the trainer's weights go to the engine with
update_weights (BF16 CUDA tensors, re-quantized in place); the engine sleeps (level 1, its KV cache
freed) while the trainer computes. Every step also checks that the engine's log-probabilities of
the tokens it sampled agree with the trainer's recomputation under the same weights, and the end
prints their mean and largest absolute difference for each quantization mode.

    python3 examples/rl_loop.py --model tests/data/tiny-llama --steps 5
"""

import argparse
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

import fp8llm


def rollouts(llm, prompt_ids, args, step):
    """n completions of the prompt, each with the engine's log-probability of every token."""
    params = fp8llm.SamplingParams(n=args.samples, temperature=1.0, max_tokens=args.max_tokens,
                                   seed=1000 + step, logprobs=0, ignore_eos=True)
    out = llm.generate([prompt_ids], params, use_tqdm=False)[0]
    return [(c.token_ids, [c.logprobs[i][t].logprob for i, t in enumerate(c.token_ids)])
            for c in out.outputs]


def trainer_logprobs(model, prompt_ids, completion_ids):
    """log p(completion token | everything before it) under the trainer's model."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=device)
    logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
    target = torch.tensor(completion_ids, device=device)
    return torch.log_softmax(logits, dim=-1).gather(-1, target[:, None])[:, 0]


def push_weights(llm, model):
    """The trainer's weights into the engine: CUDA tensors read in place, no host copy."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    report = llm.update_weights((name, p.detach()) for name, p in model.state_dict().items())
    return time.perf_counter() - start, report


def run(mode, args, prompt_ids):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.bfloat16)
    model = model.cuda()
    llm = fp8llm.LLM(args.model, quantization=mode, device="cuda", kv_memory=args.kv_memory,
                     max_context=len(prompt_ids) + args.max_tokens + 16, max_num_seqs=64)
    # The engine starts from the trainer's weights (a no-op for an unchanged checkpoint, kept so
    # that both hold exactly the same values whatever the checkpoint's dtype).
    push_weights(llm, model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    diffs = []
    for step in range(args.steps):
        samples = rollouts(llm, prompt_ids, args, step)
        rewards = torch.tensor([float(sum(t == args.reward_token for t in ids))
                                for ids, _ in samples])
        advantages = rewards - rewards.mean()
        llm.sleep(1)  # the trainer's step gets the KV cache's memory
        loss = torch.zeros((), device="cuda")
        for (ids, engine_lp), advantage in zip(samples, advantages.tolist()):
            lp = trainer_logprobs(model, prompt_ids, ids)
            diffs.extend((lp.detach().cpu() - torch.tensor(engine_lp)).abs().tolist())
            loss = loss - advantage * lp.sum()
        loss = loss / len(samples)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        llm.wake_up()
        seconds, report = push_weights(llm, model)
        print(f"  [{mode}] step {step}: mean reward {rewards.mean().item():.3f}, "
              f"weights pushed in {seconds * 1e3:.1f} ms ({report['tensors']} tensors, "
              f"{report['quantized']} re-quantized)", flush=True)
    # The last push is checked too: the engine's next rollouts against the trained model.
    for ids, engine_lp in rollouts(llm, prompt_ids, args, args.steps):
        with torch.no_grad():
            lp = trainer_logprobs(model, prompt_ids, ids)
        diffs.extend((lp.cpu() - torch.tensor(engine_lp)).abs().tolist())
    del llm
    del model
    torch.cuda.empty_cache()
    return statistics.fmean(diffs), max(diffs)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(here, "..", "tests", "data", "tiny-llama"))
    parser.add_argument("--modes", nargs="+", default=["none", "fp8-row", "fp8-block"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8, help="completions per step")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--reward-token", type=int, default=None,
                        help="the token whose count is the reward (default: the prompt's last)")
    parser.add_argument("--prompt-ids", default="0,384,950,902,17,33")
    parser.add_argument("--kv-memory", type=float, default=1.0, help="GiB")
    args = parser.parse_args()
    if not torch.cuda.is_available() or not fp8llm.cuda_available():
        sys.exit("rl_loop.py needs a CUDA GPU and an fp8llm built with the CUDA backend")
    prompt_ids = [int(t) for t in args.prompt_ids.split(",")]
    if args.reward_token is None:
        args.reward_token = prompt_ids[-1]
    results = {}
    for mode in args.modes:
        print(f"{mode}:", flush=True)
        results[mode] = run(mode, args, prompt_ids)
    print("\n|engine logprob - trainer logprob| over the sampled tokens:")
    for mode, (mean, largest) in results.items():
        print(f"  {mode:10s} mean {mean:.3e}   max {largest:.3e}")


if __name__ == "__main__":
    main()
