// Checks a CUDA runtime call; on failure the job ends through the fatal path with the call
// text and CUDA's error string.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/fatal.h"

#define LS_CUDA_CHECK(call)                                                          \
  do {                                                                               \
    const cudaError_t ls_cuda_err_ = (call);                                         \
    if (ls_cuda_err_ != cudaSuccess)                                                 \
      LS_FATAL(#call << " failed: " << cudaGetErrorName(ls_cuda_err_) << " ("        \
                     << cudaGetErrorString(ls_cuda_err_) << ")");                    \
  } while (0)
