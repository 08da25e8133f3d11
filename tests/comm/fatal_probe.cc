// Test program: the last rank hits a fatal error while every other rank waits in a barrier
// that can never complete. The fatal path must end the whole job (fatal_abort_test.sh).
// Modes (argv[1]): none, LS_FATAL on the main thread; "uncaught", an exception that nobody
// catches, thrown on a thread of its own (the terminate handler must take the fatal path).
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "comm/mpi_check.h"
#include "comm/mpi_env.h"

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (env.world_rank() == env.world_size() - 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the others block first
    if (mode == "uncaught") {
      std::thread([&] {
        throw std::runtime_error("injected uncaught exception on rank " + std::to_string(env.world_rank()) + " (test)");
      }).join();
    }
    LS_FATAL("injected failure on rank " << env.world_rank() << " (test)");
  }
  LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  return 0;
}
