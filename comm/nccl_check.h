// Checks an NCCL call; on failure the job ends through the fatal path with NCCL's error string
// and its last error message (which usually names the transport or peer that failed).
#pragma once

#include <nccl.h>

#include "kernels/fatal.h"

#define LS_NCCL_CHECK(call)                                                                 \
  do {                                                                                      \
    const ncclResult_t ls_nccl_rc_ = (call);                                                \
    if (ls_nccl_rc_ != ncclSuccess && ls_nccl_rc_ != ncclInProgress)                        \
      LS_FATAL(#call << " failed: " << ncclGetErrorString(ls_nccl_rc_) << " ("              \
                     << ncclGetLastError(nullptr) << "); NCCL_DEBUG=INFO shows the details"); \
  } while (0)
