// upload_weight (see weight_upload.h).
#include "model/weight_upload.h"

#include <algorithm>
#include <vector>

#include "kernels/fatal.h"
#include "model/fp8_weight_slices.h"
#include "model/parallel_weight_read.h"

namespace lockstep {

namespace {

// The slices stacked by rows into a new device buffer, elem bytes a value, a staging chunk of
// rows at a time: read(s, r, end, pinned) fills rows [r, end) of slice s.
template <typename Read>
DeviceBuffer upload_stacked(PinnedUploader& uploader, const StackedSlices& slices, std::size_t elem, Read&& read) {
  const std::int64_t total = stacked_elements(slices);
  if (total == 0) return {};
  DeviceBuffer device(DeviceKind::Cuda, static_cast<std::size_t>(total) * elem);
  char* at = static_cast<char*>(device.data());
  for (const WeightSlice& s : slices) {
    const std::size_t row_bytes = static_cast<std::size_t>(s.cols()) * elem;
    LS_CHECK(row_bytes <= uploader.chunk_bytes(), "upload_weight: a row of " << s.name << " (" << row_bytes
                                                      << " bytes) is larger than a staging buffer");
    const auto rows_a_chunk = static_cast<std::int64_t>(uploader.chunk_bytes() / row_bytes);
    for (std::int64_t r = s.r0; r < s.r1; r += rows_a_chunk) {
      const std::int64_t end = std::min(s.r1, r + rows_a_chunk);
      const std::size_t bytes = static_cast<std::size_t>(end - r) * row_bytes;
      uploader.upload_with(at, bytes, [&](void* pinned) { read(s, r, end, static_cast<char*>(pinned)); });
      at += bytes;
    }
  }
  return device;
}

}  // namespace

DeviceBuffer upload_weight(PinnedUploader& uploader, const WeightSource& w, const StackedSlices& slices, DType to) {
  return upload_stacked(uploader, slices, dtype_size(to),
                        [&](const WeightSlice& s, std::int64_t r, std::int64_t end, char* pinned) {
                          read_slice_rows(w, s, r, end, to, pinned);
                        });
}

Fp8DeviceWeight upload_fp8_weight(PinnedUploader& uploader, const WeightSource& w, const StackedSlices& slices) {
  const Fp8Blocks blocks = fp8_stacked_blocks(w, slices);
  if (!blocks.stored())
    throw CheckpointError("upload_fp8_weight: " + (slices.empty() ? std::string("no slices") : slices.front().name) +
                          " cannot be kept in block fp8 (not stored so, or not cut on its blocks)");
  Fp8DeviceWeight out;
  out.block_rows = blocks.rows;
  out.block_cols = blocks.cols;
  out.values = upload_stacked(uploader, slices, 1, [&](const WeightSlice& s, std::int64_t r, std::int64_t end,
                                                       char* pinned) { read_slice_fp8_rows(w, s, r, end, pinned); });
  const std::vector<float> scales = read_fp8_stacked_scales(w, slices, blocks);  // 1/16384 of the codes: direct
  out.scales = DeviceBuffer(DeviceKind::Cuda, scales.size() * sizeof(float));
  out.scales.copy_from_host(scales.data(), scales.size() * sizeof(float));
  return out;
}

GpuStageEdges upload_stage_edges(PinnedUploader& uploader, const ModelConfig& c, const WeightSource& w,
                                 const TensorParallelSlice& s, bool first_stage, bool last_stage, DType to) {
  const EdgeWeightSlices edge = edge_weight_slices(c, s, first_stage, last_stage);
  GpuStageEdges e;
  e.embed = upload_weight(uploader, w, edge.embed, to);
  e.lm_head = upload_weight(uploader, w, edge.lm_head, to);
  e.final_norm = upload_weight(uploader, w, edge.final_norm, to);
  const std::vector<float> inv_freq = rope_inverse_frequencies(c);
  e.inv_freq = DeviceBuffer(DeviceKind::Cuda, inv_freq.size() * sizeof(float));
  e.inv_freq.copy_from_host(inv_freq.data(), e.inv_freq.bytes());
  return e;
}

}  // namespace lockstep
