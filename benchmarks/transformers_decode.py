#!/usr/bin/env python3
"""The peer for benchmarks/decode_bench.sh: Hugging Face transformers' generate() on the same
config (random bf16 weights, same prompt length and new tokens, greedy, EOS ignored), timed
the same way: decode tok/s = B * (NEW - 1) / (t(NEW tokens) - t(1 token)).
Runs on the GPU host, where PyTorch and transformers are installed.
usage: transformers_decode.py CONFIG_JSON "B1 B2 ..." [PROMPT NEW]
"""
import json
import sys
import time

import torch
import transformers


def main():
    config_path, batches = sys.argv[1], [int(b) for b in sys.argv[2].split()]
    prompt = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    new = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    with open(config_path) as f:
        cfg = transformers.AutoConfig.for_model(**json.load(f))
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    vocab = cfg.vocab_size

    def run(b, max_new):
        ids = torch.tensor([[(i * 7919 + j * 104729 + 17) % vocab for j in range(prompt)] for i in range(b)],
                           device="cuda")
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                 min_new_tokens=max_new, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        assert out.shape[1] == prompt + max_new, out.shape
        return time.perf_counter() - start

    run(1, 4)  # warm-up (kernels, allocator)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(f"{'batch':>6} {'prompt':>8} {'new':>6} {'t_prefill':>10} {'t_total':>10} {'decode_tok/s':>14} "
          f"{'per_request_tok/s':>18}")
    for b in batches:
        t1 = run(b, 1)
        tn = run(b, new)
        agg = b * (new - 1) / (tn - t1)
        print(f"{b:6d} {prompt:8d} {new:6d} {t1:10.3f} {tn:10.3f} {agg:14.1f} {agg / b:18.1f}", flush=True)


if __name__ == "__main__":
    main()
