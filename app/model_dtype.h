// --dtype: which 16-bit float a model runs in, resolved as vLLM does from the flag, the
// checkpoint's torch_dtype and the GPUs.
#pragma once

#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace lockstep {

// The names --dtype takes (vLLM's): auto, half, float16, bfloat16, float, float32; also bf16 / fp16.
inline const std::vector<std::string> kDTypeFlagNames = {"auto",     "half", "float16", "fp16",
                                                         "bfloat16", "bf16", "float",   "float32"};

// BF16 or F16. auto: the checkpoint's torch_dtype when it is float16 or bfloat16; float32 (or
// none) runs in bfloat16. gpu_compute_capability: the smallest of the job's GPUs as major * 10 +
// minor, 0 on the CPU backend. GPUs before Ampere (8.0) have no bf16 arithmetic: auto falls back
// to float16 there (with a log line) and an explicit bfloat16 is refused. float / float32 are
// refused (weights stay 16-bit; the CPU backend already computes in fp32 over them). Throws
// std::runtime_error with the reason.
DType resolve_model_dtype(const std::string& flag, const std::string& torch_dtype, int gpu_compute_capability);

}  // namespace lockstep
