// main() for multi-rank GoogleTest binaries run under mpirun: every rank runs every test,
// only rank 0 prints the usual report, other ranks print their failures, and the exit code
// is non-zero on every rank if any rank failed. `--backend=nccl` selects the GPU backend,
// `--backend=mpi-staged` the GPU backend with collectives through host memory (ranks may share
// a GPU).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "tests/mpi_test_env.h"

namespace lockstep::testing {
namespace {
const MpiEnvironment* g_env = nullptr;
CommBackend g_backend = CommBackend::Mpi;

// Prints failed assertions of a non-zero rank with its rank tag.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

const MpiEnvironment& mpi_env() { return *g_env; }
CommBackend test_backend() { return g_backend; }

}  // namespace lockstep::testing

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);
  lockstep::testing::g_env = &env;
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--backend=nccl")) lockstep::testing::g_backend = lockstep::CommBackend::Nccl;
    else if (!std::strcmp(argv[i], "--backend=mpi")) lockstep::testing::g_backend = lockstep::CommBackend::Mpi;
    else if (!std::strcmp(argv[i], "--backend=mpi-staged")) lockstep::testing::g_backend = lockstep::CommBackend::MpiStaged;
  }
  if (env.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new lockstep::testing::RankFailurePrinter(env.world_rank()));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (env.world_rank() == 0 && any_failed && !failed)
    std::fprintf(stderr, "some rank other than 0 failed (see its [rank N] lines)\n");
  return any_failed;
}
