// A rank's weights from a WeightSource straight into GPU memory (CUDA builds): each weight's
// slices (layer_weights.h) are read a chunk of rows at a time into PinnedUploader's pinned
// staging buffers, by several threads at once, and copied to the device while the next chunk is
// read. A host copy of the weight in between (a vector per tensor, another to stack q|k|v) held
// a 7B checkpoint's load to 0.75-0.86 GB/s from the page cache on an H200 host, slower than
// transformers' from_pretrained (benchmarks/RESULTS.md, tenth session).
#pragma once

#include "kernels/device_buffer.h"
#include "kernels/dtype.h"
#include "kernels/pinned_uploader.h"
#include "model/layer_weights.h"
#include "model/weight_source.h"

namespace lockstep {

// The weight `slices` stacked by rows, as `to` (BF16 or F16), in a new device buffer (empty for
// no slices). Its copies are complete once uploader.finish() returns. Rethrows a read's error.
DeviceBuffer upload_weight(PinnedUploader& uploader, const WeightSource& w, const StackedSlices& slices, DType to);

// A weight kept in block fp8 on the GPU (kernels/fp8_weights.h): its codes stacked by rows as
// upload_weight stacks its slices, and the slices' scales stacked the same way
// (read_fp8_stacked_scales).
struct Fp8DeviceWeight {
  DeviceBuffer values, scales;
  int block_rows = 0, block_cols = 0;
};
// `slices` as fp8 codes and scales; they must pass fp8_stacked_blocks (fp8_weight_slices.h),
// else CheckpointError. Its copies are complete once uploader.finish() returns.
Fp8DeviceWeight upload_fp8_weight(PinnedUploader& uploader, const WeightSource& w, const StackedSlices& slices);

// What a GPU stage holds besides its layers: the embedding (first stage), the final norm and
// lm_head (last stage; empty elsewhere), in `to`; and RoPE's inverse frequencies (fp32).
struct GpuStageEdges {
  DeviceBuffer embed, lm_head, final_norm, inv_freq;
};
GpuStageEdges upload_stage_edges(PinnedUploader& uploader, const ModelConfig& c, const WeightSource& w,
                                 const TensorParallelSlice& s, bool first_stage, bool last_stage, DType to);

}  // namespace lockstep
