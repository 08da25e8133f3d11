// Test program: the last rank hits a fatal error while every other rank waits in a barrier
// that can never complete. The fatal path must end the whole job (fatal_abort_test.sh).
#include <chrono>
#include <thread>

#include "comm/mpi_check.h"
#include "comm/mpi_env.h"

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  if (env.world_rank() == env.world_size() - 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the others block first
    LS_FATAL("injected failure on rank " << env.world_rank() << " (test)");
  }
  LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  return 0;
}
