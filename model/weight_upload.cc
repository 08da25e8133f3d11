// upload_weight (see weight_upload.h).
#include "model/weight_upload.h"

#include <sched.h>

#include <algorithm>
#include <future>
#include <vector>

#include "kernels/fatal.h"

namespace lockstep {
namespace {

// Reader threads a chunk: the CPUs this rank may run on, at most 8 (page-cache copies stop
// scaling well before that; a cold cache gets that many reads in flight).
int reader_threads() {
  cpu_set_t cpus;
  const int n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  return std::clamp(n, 1, 8);
}

// Rows [r0, r1) of slice s into out, split by rows over the reader threads (this one included)
// when there is enough of it to pay for them.
void read_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, DType to, char* out) {
  const std::size_t row_bytes = static_cast<std::size_t>(s.cols()) * dtype_size(to);
  constexpr std::size_t kMinPiece = std::size_t{4} << 20;
  const std::int64_t rows = r1 - r0;
  const std::int64_t pieces = std::clamp<std::int64_t>(
      static_cast<std::int64_t>(rows * row_bytes / kMinPiece), 1, std::min<std::int64_t>(reader_threads(), rows));
  const std::int64_t per = (rows + pieces - 1) / pieces;
  std::vector<std::future<void>> others;
  for (std::int64_t b = r0 + per; b < r1; b += per) {
    const std::int64_t e = std::min(r1, b + per);
    others.push_back(std::async(std::launch::async, [&, b, e] {
      w.read_into(s.name, s.shape, b, e, s.c0, s.c1, to, out + (b - r0) * row_bytes);
    }));
  }
  w.read_into(s.name, s.shape, r0, std::min(r1, r0 + per), s.c0, s.c1, to, out);
  for (auto& f : others) f.get();  // rethrows a reader's error
}

}  // namespace

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
      uploader.upload_with(at, bytes, [&](void* pinned) { read_rows(w, s, r, end, to, static_cast<char*>(pinned)); });
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
