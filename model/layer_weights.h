// Which slice of every weight a rank holds (vLLM's sharding) and reading it from a
// WeightSource into host memory, in the model's dtype W (bf16 or fp16); the CPU stage keeps
// these vectors, the CUDA stage reads the same slices straight into GPU memory (weight_upload.h). q/k/v and gate/up are split by output rows
// (column-parallel), o and down by input columns (row-parallel, then all-reduce); embedding
// and lm_head by vocabulary rows, the vocabulary padded to a multiple of TP; KV heads
// replicated when TP > KV heads.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "model/model_config.h"
#include "model/weight_source.h"

namespace lockstep {

struct TensorParallelSlice {
  int tp_rank = 0, tp_size = 1;
  int q_head_begin = 0, q_heads = 0;   // this rank's query heads
  int kv_head_begin = 0, kv_heads = 0; // this rank's (possibly replicated) KV heads
  int ffn_begin = 0, ffn = 0;          // intermediate columns
  int expert_ffn_begin = 0, expert_ffn = 0;  // deepseek_v3: each routed expert's intermediate columns
  int shared_ffn_begin = 0, shared_ffn = 0;  // and the shared experts' (n_shared_experts x moe_intermediate_size)
  int vocab_padded = 0, vocab_begin = 0, vocab_rows = 0;
  // Throws CheckpointError when the model cannot be split this way.
  static TensorParallelSlice make(const ModelConfig& c, int tp_rank, int tp_size);
};

// Rows [r0, r1) x columns [c0, c1) of one stored tensor, whose shape must be `shape` (a vector
// has one column); rows past the tensor's end read as zero (vocabulary padding).
struct WeightSlice {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t r0 = 0, r1 = 0, c0 = 0, c1 = 0;
  std::int64_t rows() const { return r1 - r0; }
  std::int64_t cols() const { return c1 - c0; }
};
// A weight as a rank holds it: its slices one after the other by rows (q|k|v and gate|up are
// three and two), or none where the model has no such weight. Both stages read from this list:
// the CPU stage into a host vector (read_stacked), the CUDA stage straight into device memory.
using StackedSlices = std::vector<WeightSlice>;
std::int64_t stacked_elements(const StackedSlices& s);
template <HalfFloat W>
std::vector<W> read_stacked(const WeightSource& w, const StackedSlices& s);

// Where each of a decoder layer's weights (LayerWeights, below) comes from on this rank.
struct LayerWeightSlices {
  StackedSlices input_norm, post_norm, qkv, q_norm, k_norm, qkv_bias, o, gate_up, down;
};
LayerWeightSlices layer_weight_slices(const ModelConfig& c, const TensorParallelSlice& s, int layer);

// One decoder layer's weights as this rank holds them (W: the model's dtype, bf16 or fp16;
// row-major, [out, in]). The projections that read the same input are stacked by output rows,
// so each is one GEMM (with a wider, more efficient output at decode): q|k|v and gate|up.
template <HalfFloat W>
struct LayerWeights {
  std::vector<W> input_norm, post_norm;  // [hidden]
  std::vector<W> qkv;                    // [(q_heads + 2 kv_heads) * head_dim, hidden]: q rows, k rows, v rows
  std::vector<W> q_norm, k_norm;         // [head_dim] each, shared by the heads, when the config has qk_norm
  std::vector<W> qkv_bias;               // [(q_heads + 2 kv_heads) * head_dim] when the config has biases
  std::vector<W> o;                      // [hidden, q_heads * head_dim]
  std::vector<W> gate_up;                // [2 ffn, hidden]: gate rows, then up rows
  std::vector<W> down;                   // [hidden, ffn]
};
template <HalfFloat W>
LayerWeights<W> read_layer_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s,
                                   int layer);

// Reads a stage's layers in order on a background thread, one layer ahead of the caller, so
// that reading layer l + 1 (file pages, dtype conversion, dummy values) overlaps with what the
// caller does with layer l (the CPU stage sets up its KV cache). A reader's error is rethrown by next().
template <HalfFloat W>
class LayerPrefetcher {
 public:
  LayerPrefetcher(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s, int begin, int end);
  // The next layer's weights (begin, begin + 1, ...); at most end - begin calls.
  LayerWeights<W> next();

 private:
  std::future<LayerWeights<W>> start(int layer) const;
  const ModelConfig& config_;
  const WeightSource& weights_;
  const TensorParallelSlice& slice_;
  int next_, end_;
  std::future<LayerWeights<W>> pending_;
};

// The embedding (stage 0), and the final norm and lm_head (last stage; the embedding's rows
// when tied). Each [vocab_rows, hidden] in W; empty on stages that do not use them.
template <HalfFloat W>
struct StageEdgeWeights {
  std::vector<W> embed, lm_head, final_norm;
};
// Where they come from: lm_head is the embedding's rows when the model ties them.
struct EdgeWeightSlices {
  StackedSlices embed, lm_head, final_norm;
};
EdgeWeightSlices edge_weight_slices(const ModelConfig& c, const TensorParallelSlice& s, bool first_stage,
                                    bool last_stage);
template <HalfFloat W>
StageEdgeWeights<W> read_edge_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s,
                                      bool first_stage, bool last_stage);

// Weight-loading progress, logged by TP rank 0 of each stage after every layer:
// "loading weights<where>, stage S: layer i/n, MB, GB/s".
class LoadProgress {
 public:
  LoadProgress(const WeightSource& weights, int tp_rank, int stage, std::string where);
  void layer_done(int done, int total) const;

 private:
  const WeightSource& weights_;
  bool log_;
  int stage_;
  std::string where_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace lockstep
