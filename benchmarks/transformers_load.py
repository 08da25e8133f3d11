#!/usr/bin/env python3
"""The peer for gpu_check.sh's `load` step: Hugging Face transformers' from_pretrained() of a
hub-layout checkpoint straight onto the GPU (device_map="cuda", bf16), timed from the call to
the weights being on the device. Runs on the GPU host, where PyTorch and transformers are.
usage: transformers_load.py CHECKPOINT_DIR
"""
import os
import sys
import time

import torch
import transformers


def main():
    path = sys.argv[1]
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))
    torch.cuda.init()  # CUDA's start-up is not the load's
    torch.empty(1, device="cuda")
    start = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, device_map="cuda")
    torch.cuda.synchronize()
    sec = time.perf_counter() - start
    on_gpu = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"transformers {transformers.__version__} from_pretrained to cuda: {sec:.2f} s, "
          f"{size / 1e9:.2f} GB of safetensors, {on_gpu / 1e9:.2f} GB on the GPU, {size / 1e9 / sec:.2f} GB/s")


if __name__ == "__main__":
    main()
