// Shared state of a multi-rank GoogleTest binary (see mpi_test_main.cc): the MPI environment
// and the collectives backend the run was asked to test (--backend=mpi|nccl).
#pragma once

#include "comm/collectives.h"
#include "comm/mpi_env.h"

namespace lockstep::testing {

const MpiEnvironment& mpi_env();
CommBackend test_backend();

}  // namespace lockstep::testing
