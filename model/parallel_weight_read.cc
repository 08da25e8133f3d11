// read_slice_rows (see parallel_weight_read.h).
#include "model/parallel_weight_read.h"

#include <sched.h>

#include <algorithm>
#include <future>
#include <vector>

namespace lockstep {

int weight_reader_threads() {
  cpu_set_t cpus;
  const int n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  return std::clamp(n, 1, 8);
}

void read_slice_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, DType to,
                     char* out) {
  const std::size_t row_bytes = static_cast<std::size_t>(s.cols()) * dtype_size(to);
  constexpr std::size_t kMinPiece = std::size_t{4} << 20;
  const std::int64_t rows = r1 - r0;
  const std::int64_t pieces = std::clamp<std::int64_t>(static_cast<std::int64_t>(rows * row_bytes / kMinPiece), 1,
                                                       std::min<std::int64_t>(weight_reader_threads(), rows));
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

}  // namespace lockstep
