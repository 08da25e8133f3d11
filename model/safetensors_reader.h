// Reads a hub checkpoint's weights: model.safetensors.index.json (or a single
// model.safetensors), each shard memory-mapped, tensors found by name. Ranks copy only the
// rows / columns they own out of the mapping, so a rank never reads another rank's slice.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace lockstep {

// Storage types a checkpoint may hold; fp8 is e4m3 (DeepSeek's block-scaled weights).
enum class WeightDType { F32, BF16, F16, F8_E4M3 };

struct TensorInfo {
  std::string name;
  std::string shard;              // file name of the shard holding it
  WeightDType dtype = WeightDType::BF16;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;  // inside the shard's mapping
  std::size_t bytes = 0;
  std::int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  std::int64_t cols() const;      // product of the other dimensions (1 for vectors)
};

std::size_t weight_dtype_size(WeightDType t);
// safetensors' names ("BF16", "F16", "F32", "F8_E4M3"); parse throws CheckpointError naming `where`.
const char* weight_dtype_name(WeightDType t);
WeightDType parse_weight_dtype(const std::string& s, const std::string& where);
float weight_to_float(const std::uint8_t* data, std::size_t i, WeightDType t);

// What a reader may convert a weight to: the model's 16-bit type, or float (routers' scores and
// biases, which transformers keeps in fp32).
template <typename T>
concept WeightValue = HalfFloat<T> || std::same_as<T, float>;

// DeepSeek's block-scaled fp8: weight (r, c) is its stored fp8 value times
// scale_inv[r / block_rows, c / block_cols] (the tensor NAME_scale_inv, fp32).
struct BlockScales {
  const TensorInfo* scale_inv = nullptr;
  std::int64_t block_rows = 128, block_cols = 128;
};

// What SafetensorsCheckpoint::read_into does, over a window of a tensor (for readers that copy
// a slice out before converting it): `t` holds rows [row0, row0 + t.rows()) and columns [col0,
// col0 + t.cols()) of a tensor of full_rows rows; the rows and columns asked for, and the fp8
// block scales (the whole NAME_scale_inv), are indexed as in the full tensor.
template <WeightValue W>
void convert_weight_window(const TensorInfo& t, std::int64_t row0, std::int64_t col0, std::int64_t full_rows,
                           std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin, std::int64_t col_end,
                           W* out, const BlockScales* scales);

// What every checkpoint reader checks of a tensor it looks up: it exists (`found`), and has the
// shape config.json implies (expected; {} skips the check). Throws CheckpointError naming both.
void check_tensor(const std::string& where, const std::string& name, bool found, const std::vector<std::int64_t>& shape,
                  const std::vector<std::int64_t>& expected);
// A block-fp8 tensor's scales: their name, the CheckpointError for a checkpoint without them
// (only DeepSeek's block-scaled fp8 is read), and their shape for block_rows x block_cols blocks.
std::string fp8_scale_name(const std::string& name);
void check_fp8_scales(const std::string& name, bool found);
std::vector<std::int64_t> fp8_scale_shape(std::int64_t rows, std::int64_t cols, int block_rows, int block_cols);

class MappedFile;

class SafetensorsCheckpoint {
 public:
  // Throws CheckpointError for a missing index/shard, a bad header, or overlapping data.
  explicit SafetensorsCheckpoint(const std::string& dir);
  ~SafetensorsCheckpoint();

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws CheckpointError naming the tensor and the checkpoint when it is missing, or when
  // its shape is not `expected_shape` (pass {} to skip the check).
  const TensorInfo& get(const std::string& name, const std::vector<std::int64_t>& expected_shape = {}) const;
  std::size_t tensor_count() const { return tensors_.size(); }
  std::vector<std::string> tensor_names() const;  // sorted

  // Rows [row_begin, row_end) x columns [col_begin, col_end) of a 1-D/2-D tensor in W (the
  // model's dtype, bf16 or fp16, or float) into out[(row_end - row_begin) * (col_end - col_begin)]:
  // the stored bits when the tensor is W, else converted through float (round to nearest even; in
  // fp16 what rounds past 65504 is +-inf, as a cast in PyTorch), each value times its block's
  // scale first when `scales` is given; rows past the tensor's end are zero (vocab padding).
  // Counts the bytes it reads in bytes_read().
  template <WeightValue W>
  void read_into(const TensorInfo& t, std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin,
                 std::int64_t col_end, W* out, const BlockScales* scales = nullptr) const;
  template <HalfFloat W>
  std::vector<W> read(const TensorInfo& t, std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin,
                      std::int64_t col_end) const {
    std::vector<W> out(static_cast<std::size_t>((row_end - row_begin) * (col_end - col_begin)));
    read_into(t, row_begin, row_end, col_begin, col_end, out.data());
    return out;
  }
  template <HalfFloat W>
  std::vector<W> read(const TensorInfo& t) const { return read<W>(t, 0, t.rows(), 0, t.cols()); }
  // The same window's stored bytes, whatever the dtype (rows past the end zero).
  void read_bytes_into(const TensorInfo& t, std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin,
                       std::int64_t col_end, std::uint8_t* out) const;
  std::uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::string dir_;
  std::map<std::string, std::unique_ptr<MappedFile>> shards_;
  std::map<std::string, TensorInfo> tensors_;
  mutable std::atomic<std::uint64_t> bytes_read_{0};  // reads may run on several threads (LayerPrefetcher)
};

}  // namespace lockstep
