// The model stage the multi-rank parity tests run: the CPU backend (make_cpu_stage) under
// --backend=mpi, the CUDA backend (make_gpu_stage, its KV cache allocated) under
// --backend=nccl or --backend=mpi-staged on a GPU host. Also the tolerances that differ between the two.
#pragma once

#include <memory>

#include "comm/comm_groups.h"
#include "comm/rank_grid.h"
#include "model/cpu_stage.h"
#include "tests/mpi_test_env.h"
#if LOCKSTEP_WITH_CUDA
#include "model/gpu_stage.h"
#endif

namespace lockstep::testing {

inline bool on_gpu() { return uses_device_buffers(test_backend()); }

// Greedy tokens must match transformers wherever its top-2 logits differ by more than this:
// fp32 on the CPU; on the GPU every GEMM input is rounded to the model's dtype (see
// model_parity_test), bf16 or the finer fp16, which the same margin covers.
inline float clear_margin() { return on_gpu() ? 6e-2f : 1e-2f; }

inline std::unique_ptr<ForwardModel> make_stage(const ModelConfig& config, const WeightSource& weights,
                                                CommGroups& groups, const RankGrid& grid, const LayerRange& layers,
                                                int blocks, int block_size) {
  if (!on_gpu()) return make_cpu_stage(config, weights, groups.tp(), groups.pp(), layers, blocks, block_size);
#if LOCKSTEP_WITH_CUDA
  auto m = make_gpu_stage(config, weights, groups.tp(), groups.pp(), layers, grid.gpu(), block_size);
  m->allocate_kv_cache(blocks);
  return m;
#else
  (void)grid;
  return nullptr;
#endif
}

}  // namespace lockstep::testing
