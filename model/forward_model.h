// What the engine runs each step on every rank: one pipeline stage of the model, on the CPU
// backend (make_cpu_stage: DenseTransformer, DeepseekV3Transformer) or on a GPU (make_gpu_stage:
// CudaDenseStage, CudaDeepseekV3Stage, on GpuStageFrame). All take the same batch and return the same
// logits, so the engine, the scheduler and the tests do not care which.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/sampling.h"
#include "model/model_config.h"

namespace lockstep {

// One forward step's tokens (prefill chunks and decode tokens of several sequences mixed).
struct ForwardBatch {
  std::vector<int> token_ids;          // [T]
  std::vector<int> positions;          // [T]
  std::vector<int> seq_of_token;       // [T] index into block_tables
  std::vector<int> block_tables;       // [num_seqs * max_blocks]
  int max_blocks = 0;
  std::vector<int> logit_rows;         // token indices whose logits the last stage returns
};

// Where each token's K/V go in a paged cache of `num_blocks` blocks of `block_size` tokens:
// block_tables[seq, position / block_size] * block_size + position % block_size. A block id
// outside the cache is a bug in the caller and ends the job.
std::vector<std::int64_t> kv_cache_slots(const ForwardBatch& batch, int block_size, int num_blocks);

// The last stage's logits [rows, vocab] from the TP ranks' vocabulary slices gathered as
// [tp, rows, vocab_rows]: rank r's columns go to r * vocab_rows, the padding past vocab is dropped.
void assemble_vocab_parallel_logits(const float* gathered, int tp, std::int64_t rows, std::int64_t vocab_rows,
                                    std::int64_t vocab, float* logits);

class ForwardModel {
 public:
  virtual ~ForwardModel() = default;
  // Runs this rank's stage. The last stage returns logits [logit_rows, vocab_size] (host
  // memory) on every TP rank; other stages send activations on and return an empty span. The
  // span views the model's own buffer (on a GPU the pinned one the logits arrive in: at batch
  // 256 x 152k vocabulary a copy would be 155 MB a step), valid until its next forward call.
  virtual std::span<const float> forward(const ForwardBatch& batch) = 0;
  // The same step for a batch whose rows are all greedy: the last stage returns each logit row's
  // argmax id [logit_rows] (the lowest on ties, as the sampler's), on every TP rank. This one
  // takes it from forward()'s logits; a GPU stage overrides it to skip the logits' trip to the
  // host (at batch 32 x 152k vocabulary, 19 MB a step).
  virtual std::vector<int> forward_argmax(const ForwardBatch& batch);
  // The same step for rows that are only drawn (no penalties, logit bias or logprobs): the last
  // stage returns the id drawn per logit row by rows[i] (model/sampler.h's semantics, rows[i].u
  // the row's uniform draw), on every TP rank. This one samples forward()'s logits on the host;
  // a GPU stage may draw where the logits are (kernels/sampling.h).
  virtual std::vector<int> forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows);
  virtual const ModelConfig& config() const = 0;
  virtual int block_size() const = 0;
  virtual int num_kv_blocks() const = 0;
};

}  // namespace lockstep
