// Test program: the last rank hits a fatal error while every other rank waits in a barrier
// that can never complete. The fatal path must end the whole job (fatal_abort_test.sh).
// Modes (argv[1]): none, LS_FATAL on the main thread; "uncaught", an exception that nobody
// catches, thrown on a thread of its own (the terminate handler must take the fatal path);
// "stuck", the last rank waits in the barrier with a step armed (StepWatchdog,
// LOCKSTEP_STEP_TIMEOUT) while the others never come, as in a collective whose peer is gone.
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "app/engine/step_watchdog.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool last = env.world_rank() == env.world_size() - 1;
  if (mode == "stuck") {
    if (!last) {
      std::this_thread::sleep_for(std::chrono::minutes(10));  // never reaches the barrier
      return 0;
    }
    lockstep::StepWatchdog watchdog(lockstep::StepWatchdog::timeout_from_env(false));
    LS_CHECK(watchdog.enabled(), "set LOCKSTEP_STEP_TIMEOUT");
    lockstep::StepWatchdog::Armed armed(watchdog, 42);
    LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    return 0;
  }
  if (last) {
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
