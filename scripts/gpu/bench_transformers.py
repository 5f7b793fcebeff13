"""The transformers baseline for scripts/gpu/bench_load.sh: time from_pretrained(BF16, cuda) on a
model directory, one prefill of random ids, and greedy generate (tokens/s), for comparison with
`fp8llm bench --device cuda` on the same directory (page cache warm for both)."""
import argparse
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--decode-tokens", type=int, default=128)
    args = ap.parse_args()

    # CUDA starts outside the timed load, as it does in fp8llm's second load in a process; its cost
    # is printed beside it (fp8llm's first load includes its own).
    t0 = time.perf_counter()
    torch.cuda.init()
    torch.empty(1, device="cuda")
    torch.cuda.synchronize()
    startup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.bfloat16,
                                                 device_map="cuda")
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}")
    print(f"load       {load_s:.3f} s ({nbytes / load_s / 1e9:.2f} GB/s of BF16 weights, "
          f"{nbytes / 2**30:.2f} GiB), peak device {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB; "
          f"CUDA start-up before it {startup_s:.3f} s")

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (1, args.prompt_tokens), generator=gen).cuda()
    with torch.no_grad():
        model(ids[:, :8])  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(ids)
        torch.cuda.synchronize()
        prefill_s = time.perf_counter() - t0
        model.generate(ids[:, :8], max_new_tokens=4, do_sample=False)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=args.decode_tokens,
                             min_new_tokens=args.decode_tokens, do_sample=False)
        torch.cuda.synchronize()
        gen_s = time.perf_counter() - t0
    new = out.shape[1] - ids.shape[1]
    # generate() includes one prefill; subtract the measured one for the decode rate.
    decode_s = max(gen_s - prefill_s, 1e-9)
    print(f"prefill    {args.prompt_tokens} tokens in {prefill_s:.3f} s "
          f"({args.prompt_tokens / prefill_s:.1f} tokens/s)")
    print(f"generate   {new} tokens in {gen_s:.3f} s with the prefill; decode {new / decode_s:.1f} "
          f"tokens/s ({decode_s * 1e3 / new:.2f} ms/token)")


if __name__ == "__main__":
    main()
