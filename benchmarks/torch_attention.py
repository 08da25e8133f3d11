#!/usr/bin/env python3
"""The peer for kernel_bench's prefill_attention rows: PyTorch's causal GQA attention
(torch.nn.functional.scaled_dot_product_attention, what transformers' "sdpa" attention calls) on
the same shapes, timed the same way (CUDA events around each call, L2 flushed before each, the
median of the runs). Each SDPA backend that takes the shape is timed on its own; FLOPs count the
visible (causal) positions only, as kernel_bench does: 4 * seqs * prompt (prompt + 1) / 2 * heads * D.
Runs on the GPU host, where PyTorch is installed.
usage: torch_attention.py [SEQSxPROMPT ...]   (default: 8x1024 1x16384; R1-Distill-Qwen-7B heads)
"""
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEADS, KV_HEADS, HEAD_DIM = 28, 4, 128
BACKENDS = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
            ("efficient", SDPBackend.EFFICIENT_ATTENTION)]


def time_call(fn, runs=20):
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")  # larger than the H200's L2
    times = []
    for i in range(runs + 3):
        flush.zero_()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        if i >= 3:  # warm-up: kernel selection, allocator
            times.append(start.elapsed_time(stop) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    warnings.filterwarnings("ignore", category=UserWarning)  # why a backend declined: "not taken" says so
    shapes = sys.argv[1:] or ["8x1024", "1x16384"]
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, bf16, heads {HEADS}/{KV_HEADS}, D {HEAD_DIM}")
    for shape in shapes:
        seqs, prompt = (int(x) for x in shape.split("x"))
        q = torch.randn(seqs, HEADS, prompt, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(seqs, KV_HEADS, prompt, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(seqs, KV_HEADS, prompt, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
        # transformers' repeat_kv: every query head gets its KV head's rows (kept outside the timing)
        k_rep = k.repeat_interleave(HEADS // KV_HEADS, dim=1)
        v_rep = v.repeat_interleave(HEADS // KV_HEADS, dim=1)
        flops = 4.0 * seqs * prompt * (prompt + 1) / 2 * HEADS * HEAD_DIM
        for name, backend in BACKENDS:
            for gqa in (True, False):
                kk, vv = (k, v) if gqa else (k_rep, v_rep)
                try:
                    with sdpa_kernel(backend):
                        us = time_call(lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=True,
                                                                               enable_gqa=gqa))
                except RuntimeError as e:
                    print(f"prefill_attention/torch_{name}/{'gqa' if gqa else 'repeat_kv'}/seqs:{seqs}/prompt:{prompt}"
                          f"  not taken: {str(e).splitlines()[0][:100]}")
                    continue
                print(f"prefill_attention/torch_{name}/{'gqa' if gqa else 'repeat_kv'}/seqs:{seqs}/prompt:{prompt}"
                      f"  {us:10.1f} us  {flops / us / 1e6:7.1f} TFLOP/s")


if __name__ == "__main__":
    main()
