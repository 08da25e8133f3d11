// CPU stages' embedding, PP transfers and logits (see cpu_stage_edges.h).
#include "model/cpu_stage_edges.h"

#include <algorithm>

#include "kernels/dense_ops.h"

namespace lockstep {

template <HalfFloat W>
void cpu_stage_input(const ModelConfig& c, const TensorParallelSlice& s, const StageEdgeWeights<W>& edge,
                     Collectives& tp, Collectives& pp, const ForwardBatch& b, std::vector<float>& h) {
  const std::int64_t T = b.token_ids.size(), H = c.hidden_size;
  if (pp.rank() > 0) {
    h.resize(T * H);
    pp.recv(h.data(), h.size(), DType::F32, pp.rank() - 1);
    pp.synchronize();
    return;
  }
  h.assign(T * H, 0.0f);
  for (std::int64_t t = 0; t < T; ++t) {
    const int local = b.token_ids[t] - s.vocab_begin;
    if (local < 0 || local >= s.vocab_rows) continue;  // another rank's rows (or padding)
    for (std::int64_t i = 0; i < H; ++i) h[t * H + i] = to_float(edge.embed[local * H + i]);
  }
  if (tp.size() > 1) tp.all_reduce(h.data(), h.data(), h.size(), DType::F32, ReduceOp::Sum);
}

template <HalfFloat W>
bool cpu_stage_output(const ModelConfig& c, const TensorParallelSlice& s, const StageEdgeWeights<W>& edge,
                      Collectives& tp, Collectives& pp, const ForwardBatch& b, std::vector<float>& h,
                      std::vector<float>& logits) {
  if (pp.rank() < pp.size() - 1) {
    pp.send(h.data(), h.size(), DType::F32, pp.rank() + 1);
    pp.synchronize();
    return false;
  }
  const std::int64_t H = c.hidden_size, R = b.logit_rows.size(), VR = s.vocab_rows;
  std::vector<float> rows(R * H);
  for (std::int64_t i = 0; i < R; ++i)
    std::copy(h.begin() + b.logit_rows[i] * H, h.begin() + (b.logit_rows[i] + 1) * H, rows.begin() + i * H);
  cpu::rms_norm(rows.data(), R, H, edge.final_norm.data(), static_cast<float>(c.rms_norm_eps), rows.data());
  std::vector<float> local(R * VR);
  cpu::linear(rows.data(), R, H, edge.lm_head.data(), VR, nullptr, local.data());
  std::vector<float> gathered(tp.size() * R * VR);
  if (tp.size() > 1) tp.all_gather(local.data(), gathered.data(), local.size(), DType::F32);
  else gathered = local;
  logits.resize(R * c.vocab_size);
  assemble_vocab_parallel_logits(gathered.data(), tp.size(), R, VR, c.vocab_size, logits.data());
  return true;
}

#define LOCKSTEP_CPU_STAGE_EDGES(W)                                                                                \
  template void cpu_stage_input<W>(const ModelConfig&, const TensorParallelSlice&, const StageEdgeWeights<W>&,     \
                                   Collectives&, Collectives&, const ForwardBatch&, std::vector<float>&);          \
  template bool cpu_stage_output<W>(const ModelConfig&, const TensorParallelSlice&, const StageEdgeWeights<W>&,    \
                                    Collectives&, Collectives&, const ForwardBatch&, std::vector<float>&,          \
                                    std::vector<float>&);
LOCKSTEP_CPU_STAGE_EDGES(bf16)
LOCKSTEP_CPU_STAGE_EDGES(fp16)
#undef LOCKSTEP_CPU_STAGE_EDGES

}  // namespace lockstep
