#!/usr/bin/env python3
"""Times torch._scaled_mm (FP8 e4m3, row-wise scales: scale_a [M,1], scale_b [1,N], bf16 out) and
torch bf16 matmul at the Llama-3-8B projection shapes that bench_gemm uses, for comparison.

Same method as bench_gemm: random inputs, weights rotating among copies larger than L2 together,
warm-up, then the median over batches of back-to-back calls timed with CUDA events.

    python3 scripts/gpu/bench_scaled_mm.py [--quick] [--csv FILE]
"""
import argparse
import statistics

import torch

SHAPES = [("q/o", 4096, 4096), ("k/v", 1024, 4096), ("gate/up", 14336, 4096), ("down", 4096, 14336)]
ROTATE_BYTES = 320 << 20


def time_calls(fn, batches):
    for i in range(3):
        fn(i)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for i in range(3):
        fn(i)
    b.record()
    b.synchronize()
    one_ms = max(1e-4, a.elapsed_time(b) / 3)
    iters = int(min(500, max(1, 2.0 / one_ms)))
    per_call, call = [], 0
    for _ in range(batches):
        a.record()
        for _ in range(iters):
            fn(call)
            call += 1
        b.record()
        b.synchronize()
        per_call.append(a.elapsed_time(b) * 1000.0 / iters)
    return statistics.median(per_call)


def quantize_rows(t):
    """Per-row e4m3 quantization (scale = amax / 448) of a bf16 [R, C] tensor."""
    amax = t.float().abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / 448.0)
    q = (t.float() / scale).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv")
    args = ap.parse_args()
    batches = 5 if args.quick else 15
    ms = [1, 16, 128] if args.quick else [1, 16, 128, 1024, 4096]
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    rows = []
    for name, n, k in SHAPES:
        copies = max(2, -(-ROTATE_BYTES // (n * k)))
        wq, ws, wb = [], [], []
        for c in range(copies):
            w = (torch.rand(n, k, device=dev, dtype=torch.float32) * 2 - 1).mul_(0.05).to(torch.bfloat16)
            q, s = quantize_rows(w)
            wq.append(q.t())  # [K, N], column-major as _scaled_mm wants its second operand
            ws.append(s.t().contiguous())  # [1, N]
            if c < (copies + 1) // 2:
                wb.append(w)
            del w
        for m in ms:
            x = ((torch.rand(m, k, device=dev) * 2 - 1) * 2).to(torch.bfloat16)
            xq, xs = quantize_rows(x)
            flops = 2.0 * m * n * k

            def fp8(i):
                torch._scaled_mm(xq, wq[i % copies], scale_a=xs, scale_b=ws[i % copies],
                                 out_dtype=torch.bfloat16)

            def bf16(i):
                torch.matmul(x, wb[i % len(wb)].t())

            for variant, fn, wbytes in (("torch _scaled_mm rowwise", fp8, n * k + 4 * n),
                                        ("torch bf16 matmul", bf16, 2 * n * k)):
                try:
                    us = time_calls(fn, batches)
                except RuntimeError as e:
                    print(f"{name:9s} {m:5d} {variant:26s} unsupported: {str(e).splitlines()[0]}")
                    rows.append((name, m, n, k, variant, "", "", ""))
                    continue
                tflops = flops / (us * 1e-6) / 1e12
                gbps = wbytes / (us * 1e-6) / 1e9
                print(f"{name:9s} {m:5d} {variant:26s} {us:9.1f} us {tflops:7.1f} TFLOP/s {gbps:7.0f} GB/s")
                rows.append((name, m, n, k, variant, f"{us:.3f}", f"{tflops:.2f}", f"{gbps:.1f}"))
        del wq, ws, wb
        torch.cuda.empty_cache()
        print()
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("shape,m,n,k,variant,us,tflops,weight_gbps\n")
            for r in rows:
                f.write(",".join(str(v) for v in r) + "\n")


if __name__ == "__main__":
    main()
