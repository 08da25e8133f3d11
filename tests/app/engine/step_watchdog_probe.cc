// Test program: the last rank arms a StepWatchdog (LOCKSTEP_STEP_TIMEOUT) and waits in a barrier
// that the other ranks never reach, as a rank waits in a collective whose peer is gone. Its
// watchdog must end the whole job through the fatal path (step_watchdog_test.sh).
#include <chrono>
#include <thread>

#include "app/engine/step_watchdog.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  if (env.world_rank() != env.world_size() - 1) {
    std::this_thread::sleep_for(std::chrono::minutes(10));  // stuck: never reaches the barrier
    return 0;
  }
  lockstep::StepWatchdog watchdog(lockstep::StepWatchdog::timeout_from_env(false));
  LS_CHECK(watchdog.enabled(), "set LOCKSTEP_STEP_TIMEOUT");
  lockstep::StepWatchdog::Armed armed(watchdog, 42);
  LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  return 0;
}
