// Drawing one token per row of logits where the logits are (the GPU, for a decode step's rows),
// with the host sampler's semantics (model/sampler.h, vLLM's): temperature 0 is the argmax
// (lowest id on ties); otherwise weights w = exp((l - max) / t), so the best has w = 1; min-p
// keeps w >= min_p; top-k the k first and top-p the shortest prefix reaching top_p of the kept
// mass, in the order by w descending, lower id first among equals; the draw takes the first
// token whose running mass passes u times the kept mass: in id order when no filter is on, else
// in that order.
//
// Masses are integers, w scaled by 2^45 and truncated (a vocabulary of up to 2^18 sums within 63
// bits), so any summation order gives the same sums and a row's token depends on its logits and
// u alone, on any device; w itself is exp in double rounded to float, which CPU and GPU agree on
// (bar one case in ~2^29). The cut points are found by a 4-level radix select over w's float
// bits (positive floats order as their bits), not by sorting: a few passes over the row. The
// integer masses also make the GPU's split of a row over several blocks give the same sums.
#pragma once

#include <cstdint>

#include "kernels/gpu_context.h"

namespace lockstep {

struct RowSampling {
  float temperature = 1.0f;  // < 1e-5: greedy
  int top_k = -1;            // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  double u = 0.0;            // the row's uniform draw in [0, 1) (SamplerRng::uniform)
};

// The largest vocabulary the integer masses allow.
constexpr std::int64_t kMaxSamplingVocab = std::int64_t{1} << 18;

namespace cpu {
// ids[r] for each row of logits [rows, vocab]: the reference the GPU kernel is tested against.
void sample_rows(const float* logits, std::int64_t rows, std::int64_t vocab, const RowSampling* params, int* ids);
}  // namespace cpu

namespace cuda {
// The same on the GPU, for logits laid out as the TP ranks' vocabulary slices gathered one after
// another, [slices, rows, slice_width] (slice s holds ids s * slice_width ...; the last may be
// padded past vocab), or [rows, vocab] with slices 1 and slice_width = vocab. params and ids are
// device arrays of rows entries. Scratch: 4 bytes per logit. cluster: blocks per row (1, 2, 4
// or 8, on GPUs with thread-block clusters); 0 chooses by the row count. The ids do not depend on it.
void sample_rows(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, std::int64_t slices,
                 std::int64_t slice_width, const RowSampling* params, int* ids, int cluster = 0);
}  // namespace cuda

}  // namespace lockstep
