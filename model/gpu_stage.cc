// make_gpu_stage (see gpu_stage.h).
#include "model/gpu_stage.h"

#include "model/cuda_deepseek_v3_transformer.h"
#include "model/cuda_dense_transformer.h"

namespace lockstep {

std::unique_ptr<GpuStage> make_gpu_stage(const ModelConfig& c, const WeightSource& w, Collectives& tp, Collectives& pp,
                                         const LayerRange& layers, int gpu, int block_size, bool cuda_graphs) {
  if (c.is_deepseek_v3()) return make_cuda_deepseek_v3_stage(c, w, tp, pp, layers, gpu, block_size, cuda_graphs);
  return make_cuda_dense_stage(c, w, tp, pp, layers, gpu, block_size, cuda_graphs);
}

}  // namespace lockstep
