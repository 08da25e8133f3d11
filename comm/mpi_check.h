// Checks an MPI call; on failure the job ends through the fatal path naming the call and MPI's
// error string. MpiEnvironment sets MPI_ERRORS_RETURN so errors reach this check.
#pragma once

#include <mpi.h>

#include <string>

#include "kernels/fatal.h"

namespace lockstep {
std::string mpi_error_string(int code);
}

#define LS_MPI_CHECK(call)                                                        \
  do {                                                                            \
    const int ls_mpi_rc_ = (call);                                                \
    if (ls_mpi_rc_ != MPI_SUCCESS)                                                \
      LS_FATAL(#call << " failed: " << ::lockstep::mpi_error_string(ls_mpi_rc_)); \
  } while (0)
