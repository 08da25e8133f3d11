// MpiEnvironment (see mpi_env.h).
#include "comm/mpi_env.h"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "comm/mpi_check.h"
#include "kernels/fatal.h"
#include "kernels/log.h"

namespace lockstep {
namespace {

void abort_job(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

// An exception nobody caught (a std::bad_alloc in a step, a thread that could not be created)
// takes the fatal path too: the message with the rank, then MPI_Abort. The default handler's
// SIGABRT printed neither, and under srun (which need not end a job when one task dies) left the
// other ranks waiting in collectives.
[[noreturn]] void on_terminate() {
  std::string reason = "terminate called without an active exception";
  if (const std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      reason = std::string("uncaught exception: ") + ex.what();
    } catch (...) {
      reason = "uncaught exception of a type not derived from std::exception";
    }
  }
  fatal_at(__FILE__, __LINE__, reason);
}

}  // namespace

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

MpiEnvironment::MpiEnvironment(int& argc, char**& argv) {
  int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &thread_level_);
  if (rc != MPI_SUCCESS) {
    std::fprintf(stderr, "lockstep: fatal: MPI_Init_thread failed (%d); is this an Open MPI build "
                         "matching the mpirun that started it?\n", rc);
    std::_Exit(1);
  }
  set_fatal_handler(&abort_job);
  std::set_terminate(&on_terminate);
  LS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  LS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  LS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  LS_MPI_CHECK(MPI_Get_processor_name(name, &len));
  host_.assign(name, len);
  ProcessIdentity id;
  id.world_rank = world_rank_;
  id.host = host_;
  set_process_identity(id);
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  set_fatal_handler(nullptr);
}

}  // namespace lockstep
