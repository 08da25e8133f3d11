// From the run-time dtype a model runs in (ModelConfig::dtype, from --dtype) to the C++ weight
// type W that the model code is templated over: with_weight_type(d, f) calls f(W{}), so the
// choice is made once (a stage's construction, a weight read) and not per op.
#pragma once

#include <string>
#include <utility>

#include "kernels/dtype.h"
#include "model/model_config.h"

namespace lockstep {

// f(bf16{}) for BF16, f(fp16{}) for F16 (both branches must return the same type); throws
// CheckpointError for any other dtype.
template <typename F>
decltype(auto) with_weight_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::BF16: return std::forward<F>(f)(bf16{});
    case DType::F16: return std::forward<F>(f)(fp16{});
    default: break;
  }
  throw CheckpointError("a model runs in bfloat16 or half (--dtype), not " + std::string(dtype_name(dtype)));
}

}  // namespace lockstep
