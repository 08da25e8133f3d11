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

namespace {

// Rows [r0, r1) of row_bytes each into out, read(b, e, at) reading rows [b, e) to `at`, split by
// rows over the reader threads (this one included) when there is enough of it to pay for them.
template <typename Read>
void read_rows_parallel(std::int64_t r0, std::int64_t r1, std::size_t row_bytes, char* out, Read&& read) {
  constexpr std::size_t kMinPiece = std::size_t{4} << 20;
  const std::int64_t rows = r1 - r0;
  const std::int64_t pieces = std::clamp<std::int64_t>(static_cast<std::int64_t>(rows * row_bytes / kMinPiece), 1,
                                                       std::min<std::int64_t>(weight_reader_threads(), rows));
  const std::int64_t per = (rows + pieces - 1) / pieces;
  std::vector<std::future<void>> others;
  for (std::int64_t b = r0 + per; b < r1; b += per) {
    const std::int64_t e = std::min(r1, b + per);
    others.push_back(std::async(std::launch::async, [&, b, e] { read(b, e, out + (b - r0) * row_bytes); }));
  }
  read(r0, std::min(r1, r0 + per), out);
  for (auto& f : others) f.get();  // rethrows a reader's error
}

}  // namespace

void read_slice_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, DType to,
                     char* out) {
  read_rows_parallel(r0, r1, static_cast<std::size_t>(s.cols()) * dtype_size(to), out,
                     [&](std::int64_t b, std::int64_t e, char* at) { w.read_into(s.name, s.shape, b, e, s.c0, s.c1, to, at); });
}

void read_slice_fp8_rows(const WeightSource& w, const WeightSlice& s, std::int64_t r0, std::int64_t r1, char* out) {
  read_rows_parallel(r0, r1, static_cast<std::size_t>(s.cols()), out, [&](std::int64_t b, std::int64_t e, char* at) {
    w.read_fp8_into(s.name, s.shape, b, e, s.c0, s.c1, reinterpret_cast<std::uint8_t*>(at));
  });
}

}  // namespace lockstep
