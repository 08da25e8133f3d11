// make_cpu_stage (see cpu_stage.h).
#include "model/cpu_stage.h"

#include "model/deepseek_v3_transformer.h"
#include "model/dense_transformer.h"

namespace lockstep {

std::unique_ptr<ForwardModel> make_cpu_stage(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                             Collectives& pp, const LayerRange& layers, int num_kv_blocks,
                                             int block_size) {
  if (c.is_deepseek_v3())
    return std::make_unique<DeepseekV3Transformer>(c, w, tp, pp, layers, num_kv_blocks, block_size);
  return std::make_unique<DenseTransformer>(c, w, tp, pp, layers, num_kv_blocks, block_size);
}

std::int64_t cpu_kv_bytes_per_token_layer(const ModelConfig& c, const TensorParallelSlice& s) {
  if (c.is_deepseek_v3()) return DeepseekV3Transformer::cache_bytes_per_token_layer(c);
  return 2 * static_cast<std::int64_t>(s.kv_heads) * c.head_dim * sizeof(float);
}

}  // namespace lockstep
