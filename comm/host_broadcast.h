// Broadcast of a variable-length byte buffer from root over an MPI communicator: how rank 0
// ships each step plan to every rank. Receivers' buffers are resized to match.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace lockstep {

void broadcast_bytes(std::vector<std::uint8_t>& bytes, int root, MPI_Comm comm);

}  // namespace lockstep
