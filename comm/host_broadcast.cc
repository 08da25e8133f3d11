// broadcast_bytes (see host_broadcast.h): the size goes first so receivers can allocate.
#include "comm/host_broadcast.h"

#include <climits>

#include "comm/mpi_check.h"

namespace lockstep {

void broadcast_bytes(std::vector<std::uint8_t>& bytes, int root, MPI_Comm comm) {
  std::uint64_t size = bytes.size();
  LS_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, root, comm));
  LS_CHECK(size <= static_cast<std::uint64_t>(INT_MAX), "host broadcast of " << size << " bytes is too large");
  bytes.resize(size);
  if (size > 0) LS_MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(size), MPI_BYTE, root, comm));
}

}  // namespace lockstep
