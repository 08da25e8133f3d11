// Which of a rank's weights a GPU can keep in block fp8 as the checkpoint stores them (DeepSeek's
// routed experts: R1's 654B of them take 654 GB so, 1.3 TB in bf16), and their scales as the
// GPU kernels index them (kernels/fp8_weights.h). A weight is a stack of slices (layer_weights.h),
// so it stays fp8 only when every slice is stored so with the same blocks and is cut on block
// boundaries: then the stacked codes' row r and column c have the scale at [r / block_rows]
// [c / block_cols] of the slices' scale windows stacked the same way.
#pragma once

#include <vector>

#include "model/layer_weights.h"
#include "model/weight_source.h"

namespace lockstep {

// The slices' blocks when they can be kept in fp8: each stored as block fp8 with the same
// blocks, 2-D, its rows whole blocks within the tensor (r0 and r1 - r0 multiples of the block's
// rows, r1 within the tensor), its columns starting on a block (c0 a multiple of the block's
// columns) and ending on one or at the tensor's end, all slices as wide. {0, 0} otherwise (then
// the weight is read dequantized, as before).
Fp8Blocks fp8_stacked_blocks(const WeightSource& w, const StackedSlices& slices);

// Each slice's window of its NAME_scale_inv (rows [r0, r1) / block_rows, columns c0 / block_cols
// up to ceil(c1 / block_cols)), stacked by rows: [stacked rows / block_rows, ceil(cols / block_cols)].
std::vector<float> read_fp8_stacked_scales(const WeightSource& w, const StackedSlices& slices, Fp8Blocks blocks);

}  // namespace lockstep
