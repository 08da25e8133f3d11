// RAII MPI environment: MPI_Init_thread on construction, MPI_Finalize on destruction, and
// the fatal handler that turns any fatal error on any rank into MPI_Abort of the whole job.
#pragma once

#include <mpi.h>

#include <string>

namespace lockstep {

class MpiEnvironment {
 public:
  MpiEnvironment(int& argc, char**& argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  const std::string& host() const { return host_; }
  // The thread level MPI granted (we ask for MPI_THREAD_SERIALIZED: the engine thread, not
  // main, may drive MPI while HTTP threads never touch it).
  int thread_level() const { return thread_level_; }

 private:
  int world_rank_ = 0;
  int world_size_ = 1;
  int thread_level_ = 0;
  std::string host_;
};

}  // namespace lockstep
