// upload_weight (see weight_upload.h).
#include "model/weight_upload.h"

#include <algorithm>
#include <vector>

#include "kernels/fatal.h"
#include "model/parallel_weight_read.h"

namespace lockstep {

DeviceBuffer upload_weight(PinnedUploader& uploader, const WeightSource& w, const StackedSlices& slices, DType to) {
  const std::size_t elem = dtype_size(to);
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
      uploader.upload_with(at, bytes,
                           [&](void* pinned) { read_slice_rows(w, s, r, end, to, static_cast<char*>(pinned)); });
      at += bytes;
    }
  }
  return device;
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
