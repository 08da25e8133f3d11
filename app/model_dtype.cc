// resolve_model_dtype (see model_dtype.h).
#include "app/model_dtype.h"

#include <stdexcept>

#include "kernels/log.h"

namespace lockstep {

DType resolve_model_dtype(const std::string& flag, const std::string& torch_dtype, int gpu_compute_capability) {
  const bool bf16_capable = gpu_compute_capability == 0 || gpu_compute_capability >= 80;
  const std::string gpu = std::to_string(gpu_compute_capability / 10) + "." + std::to_string(gpu_compute_capability % 10);
  if (flag == "half" || flag == "float16" || flag == "fp16") return DType::F16;
  if (flag == "bfloat16" || flag == "bf16") {
    if (!bf16_capable)
      throw std::runtime_error("--dtype bfloat16: bfloat16 needs GPUs of compute capability 8.0 or newer (Ampere); "
                               "this job's GPUs have " + gpu + ". Use --dtype half (float16)");
    return DType::BF16;
  }
  if (flag == "float" || flag == "float32")
    throw std::runtime_error("--dtype " + flag + " is not supported: lockstep keeps weights, KV cache and GEMM inputs "
                             "in 16 bits (the CPU backend computes in fp32 over them); use auto, bfloat16 or half");
  if (flag != "auto") throw std::runtime_error("--dtype " + flag + " is not one of auto, half, float16, bfloat16");
  if (torch_dtype == "float16" || torch_dtype == "half") return DType::F16;
  if (!bf16_capable) {
    LS_INFO("--dtype auto: the GPUs (compute capability " << gpu << ") have no bfloat16, so the " << torch_dtype
                                                            << " checkpoint runs in float16");
    return DType::F16;
  }
  return DType::BF16;  // bfloat16 checkpoints, and float32 ones (as vLLM on GPUs with bf16)
}

}  // namespace lockstep
