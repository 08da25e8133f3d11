// CommGroups and backend selection (see comm_groups.h).
#include "comm/comm_groups.h"

#include <sstream>
#include <stdexcept>

#include "comm/mpi_check.h"
#include "comm/mpi_collectives.h"
#include "comm/rank_grid.h"
#include "kernels/fatal.h"

#if LOCKSTEP_WITH_CUDA
#include "comm/host_staged_collectives.h"
#include "comm/nccl_check.h"
#include "comm/nccl_collectives.h"
#include "comm/nccl_communicators.h"
#else
namespace lockstep {
// Builds without CUDA have neither (the pointers stay null), but destroy the pointers.
class NcclCommunicators {};
class StagingStream {};
}  // namespace lockstep
#endif

namespace lockstep {

CommBackend resolve_backend(std::string_view requested, const RankGrid& grid) {
  if (requested == "mpi") return CommBackend::Mpi;
  int has_gpu = grid.gpu() >= 0 ? 1 : 0, all_have_gpu = 0;
  LS_MPI_CHECK(MPI_Allreduce(&has_gpu, &all_have_gpu, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (requested == "nccl") {
    LS_CHECK(built_with_cuda(), "--backend nccl: this lockstep was built without CUDA/NCCL "
                                "(rebuild with -DLOCKSTEP_CUDA=ON) ; use --backend mpi");
    LS_CHECK(all_have_gpu, "--backend nccl: some rank sees no GPU (rank " << grid.world_rank()
                                << " sees " << visible_gpu_count() << "); use --backend mpi");
    return CommBackend::Nccl;
  }
  LS_CHECK(requested == "auto", "unknown backend '" << requested << "' (expected auto, nccl or mpi)");
  return built_with_cuda() && all_have_gpu ? CommBackend::Nccl : CommBackend::Mpi;
}

CommGroups::CommGroups(const RankGrid& grid, CommBackend backend) : backend_(backend) {
  if (backend == CommBackend::Mpi) {
    world_ = std::make_unique<MpiCollectives>(grid.world_comm());
    tp_ = std::make_unique<MpiCollectives>(grid.tp_comm());
    pp_ = std::make_unique<MpiCollectives>(grid.pp_comm());
    return;
  }
#if LOCKSTEP_WITH_CUDA
  if (backend == CommBackend::MpiStaged) {
    staging_ = std::make_unique<StagingStream>(grid.gpu());
    world_ = std::make_unique<HostStagedCollectives>(grid.world_comm(), staging_->get());
    tp_ = std::make_unique<HostStagedCollectives>(grid.tp_comm(), staging_->get());
    pp_ = std::make_unique<HostStagedCollectives>(grid.pp_comm(), staging_->get());
    return;
  }
  int shared = grid.ranks_on_gpu(), most_shared = 0;
  LS_MPI_CHECK(MPI_Allreduce(&shared, &most_shared, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (most_shared > 1) {
    std::ostringstream os;
    os << "NCCL needs a GPU of its own for every rank, but " << most_shared << " ranks of a node share one (this rank: "
       << shared << " on GPU " << grid.gpu() << " of " << grid.host() << "); start at most one rank per GPU, or "
       << "share the GPUs through host memory with --backend mpi (slow; for trying a TP x PP layout on fewer GPUs)";
    throw std::runtime_error(os.str());
  }
  nccl_ = std::make_unique<NcclCommunicators>(grid);
  world_ = std::make_unique<NcclCollectives>(nccl_->world(), nccl_->stream());
  tp_ = std::make_unique<NcclCollectives>(nccl_->tp(), nccl_->stream());
  pp_ = std::make_unique<NcclCollectives>(nccl_->pp(), nccl_->stream());
#else
  LS_FATAL("the " << backend_name(backend) << " backend is not in this build (configure with -DLOCKSTEP_CUDA=ON)");
#endif
}

DeviceBuffer CommGroups::allocate(std::size_t bytes) const {
  if (backend_ != CommBackend::Nccl || bytes == 0) return DeviceBuffer(buffer_kind(), bytes);
#if LOCKSTEP_WITH_CUDA
  void* p = nullptr;
  LS_NCCL_CHECK(ncclMemAlloc(&p, bytes));
  return DeviceBuffer(DeviceKind::Cuda, p, bytes, [](void* q) { ncclMemFree(q); });
#else
  LS_FATAL("NCCL buffers in a build without CUDA");
#endif
}

// Collectives go before the communicators they borrow.
CommGroups::~CommGroups() {
  world_.reset();
  tp_.reset();
  pp_.reset();
  nccl_.reset();
  staging_.reset();
}

}  // namespace lockstep
