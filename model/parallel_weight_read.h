// Rows of a weight slice read into one buffer by several threads at once: how the CUDA loader
// fills each pinned staging chunk (weight_upload.h), and what benchmarks/weight_read_bench
// times without a GPU. A single reader copying out of the page cache runs at a few GB/s; a
// host's memory system gives several times that to a handful.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "model/layer_weights.h"
#include "model/weight_source.h"

namespace lockstep {

// Reader threads a chunk: the CPUs this rank may run on, at most 8 (page-cache copies stop
// scaling well before that; a cold cache gets that many reads in flight).
int weight_reader_threads();

// Rows [r0, r1) of slice s, as `to`, into out (row-major, s.cols() wide), split by rows over
// the reader threads (this one included) when there is enough of it to pay for them. Rethrows a
// reader's error.
void read_slice_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, DType to,
                     char* out);
// The same for a slice kept in block fp8: its codes as stored (WeightSource::read_fp8_into).
void read_slice_fp8_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, char* out);

}  // namespace lockstep
