// Checks a cuBLAS call; on failure the job ends through the fatal path with the call text and
// cuBLAS's status name.
#pragma once

#include <cublas_api.h>

#include "kernels/fatal.h"

#define LS_CUBLAS_CHECK(call)                                                               \
  do {                                                                                      \
    const cublasStatus_t ls_cublas_status_ = (call);                                        \
    if (ls_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                         \
      LS_FATAL(#call << " failed: " << cublasGetStatusName(ls_cublas_status_) << " ("       \
                     << cublasGetStatusString(ls_cublas_status_) << ")");                   \
  } while (0)
