// SafetensorsCheckpoint (see safetensors_reader.h). Format: 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"},
// then the raw data, offsets relative to the end of the header.
#include "model/safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <concepts>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/model_config.h"

namespace lockstep {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY);
    if (fd_ < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw CheckpointError(path + ": cannot stat");
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) throw CheckpointError(path + ": mmap failed (" + std::strerror(errno) + ")");
      data_ = static_cast<const std::uint8_t*>(p);
    }
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<std::uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  int fd_ = -1;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

WeightDType parse_weight_dtype(const std::string& s, const std::string& where) {
  if (s == "BF16") return WeightDType::BF16;
  if (s == "F16") return WeightDType::F16;
  if (s == "F32") return WeightDType::F32;
  if (s == "F8_E4M3") return WeightDType::F8_E4M3;
  throw CheckpointError(where + ": dtype " + s + " is not supported (BF16, F16, F32, F8_E4M3)");
}

const char* weight_dtype_name(WeightDType t) {
  switch (t) {
    case WeightDType::BF16: return "BF16";
    case WeightDType::F16: return "F16";
    case WeightDType::F32: return "F32";
    case WeightDType::F8_E4M3: return "F8_E4M3";
  }
  return "?";
}

namespace {

float fp8_e4m3_to_float(std::uint8_t v) {
  const int sign = v >> 7, exp = (v >> 3) & 0xf, mant = v & 7;
  if (exp == 0xf && mant == 7) return std::numeric_limits<float>::quiet_NaN();  // e4m3fn: no inf
  const float mag = exp == 0 ? std::ldexp(static_cast<float>(mant), -9)
                             : std::ldexp(1.0f + mant / 8.0f, exp - 7);
  return sign ? -mag : mag;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::int64_t TensorInfo::cols() const {
  std::int64_t c = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) c *= shape[i];
  return c;
}

std::size_t weight_dtype_size(WeightDType t) {
  switch (t) {
    case WeightDType::F32: return 4;
    case WeightDType::BF16:
    case WeightDType::F16: return 2;
    case WeightDType::F8_E4M3: return 1;
  }
  return 0;
}

float weight_to_float(const std::uint8_t* data, std::size_t i, WeightDType t) {
  switch (t) {
    case WeightDType::F32: { float f; std::memcpy(&f, data + 4 * i, 4); return f; }
    case WeightDType::BF16: { bf16 b; std::memcpy(&b, data + 2 * i, 2); return bf16_to_float(b); }
    case WeightDType::F16: { fp16 h; std::memcpy(&h, data + 2 * i, 2); return fp16_to_float(h); }
    case WeightDType::F8_E4M3: return fp8_e4m3_to_float(data[i]);
  }
  return 0.0f;
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& dir) : dir_(dir) {
  std::map<std::string, std::vector<std::string>> names_by_shard;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (access(index_path.c_str(), R_OK) == 0) {
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_text(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw CheckpointError(index_path + ": not valid JSON (" + e.what() + ")");
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw CheckpointError(index_path + ": no \"weight_map\"");
    for (const auto& [name, shard] : index["weight_map"].items()) names_by_shard[shard.get<std::string>()].push_back(name);
  } else if (access((dir + "/model.safetensors").c_str(), R_OK) == 0) {
    names_by_shard["model.safetensors"] = {};
  } else {
    throw CheckpointError(dir + ": neither model.safetensors.index.json nor model.safetensors found");
  }

  for (const auto& [shard, listed] : names_by_shard) {
    const std::string path = dir + "/" + shard;
    auto file = std::make_unique<MappedFile>(path);
    if (file->size() < 8) throw CheckpointError(path + ": too short for a safetensors file");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, file->data(), 8);
    if (header_len > file->size() - 8) throw CheckpointError(path + ": header length past the end of the file");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(file->data()) + 8, header_len));
    } catch (const nlohmann::json::exception& e) {
      throw CheckpointError(path + ": bad header (" + e.what() + ")");
    }
    const std::uint8_t* base = file->data() + 8 + header_len;
    const std::size_t data_size = file->size() - 8 - header_len;
    for (const auto& [name, desc] : header.items()) {
      if (name == "__metadata__") continue;
      TensorInfo t;
      t.name = name;
      t.shard = shard;
      const std::string where = path + ": tensor " + name;
      t.dtype = parse_weight_dtype(desc.at("dtype").get<std::string>(), where);
      t.shape = desc.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = desc.at("data_offsets").get<std::vector<std::uint64_t>>();
      std::uint64_t elems = 1;
      for (auto d : t.shape) elems *= static_cast<std::uint64_t>(d);
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] > data_size ||
          offsets[1] - offsets[0] != elems * weight_dtype_size(t.dtype))
        throw CheckpointError(where + ": data offsets do not match its shape and dtype");
      t.data = base + offsets[0];
      t.bytes = offsets[1] - offsets[0];
      tensors_[name] = t;
    }
    for (const std::string& name : listed)
      if (!tensors_.count(name))
        throw CheckpointError(index_path + ": lists " + name + " in " + shard + ", which does not hold it");
    shards_[shard] = std::move(file);
  }
}

SafetensorsCheckpoint::~SafetensorsCheckpoint() = default;

std::vector<std::string> SafetensorsCheckpoint::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors_) names.push_back(name);
  return names;
}

void check_tensor(const std::string& where, const std::string& name, bool found, const std::vector<std::int64_t>& shape,
                  const std::vector<std::int64_t>& expected) {
  if (!found) throw CheckpointError(where + ": tensor " + name + " is missing from the checkpoint");
  if (!expected.empty() && shape != expected) {
    auto fmt = [](const std::vector<std::int64_t>& s) {
      std::string out = "[";
      for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    throw CheckpointError(where + ": tensor " + name + " has shape " + fmt(shape) + ", expected " + fmt(expected) +
                          " for this config.json");
  }
}

std::string fp8_scale_name(const std::string& name) { return name + "_scale_inv"; }

void check_fp8_scales(const std::string& name, bool found) {
  if (!found)
    throw CheckpointError("tensor " + name + " is stored as fp8 (F8_E4M3) without " + fp8_scale_name(name) +
                          ": only block-scaled fp8 as DeepSeek publishes it is supported");
}

// Its shape follows from quantization_config's weight_block_size: a mismatch means another block size.
std::vector<std::int64_t> fp8_scale_shape(std::int64_t rows, std::int64_t cols, int block_rows, int block_cols) {
  return {(rows + block_rows - 1) / block_rows, (cols + block_cols - 1) / block_cols};
}

const TensorInfo& SafetensorsCheckpoint::get(const std::string& name, const std::vector<std::int64_t>& expected) const {
  const auto it = tensors_.find(name);
  check_tensor(dir_, name, it != tensors_.end(), it != tensors_.end() ? it->second.shape : expected, expected);
  return it->second;
}

template <WeightValue W>
void convert_weight_window(const TensorInfo& t, std::int64_t row0, std::int64_t col0, std::int64_t full_rows,
                           std::int64_t row_begin, std::int64_t row_end, std::int64_t col_begin, std::int64_t col_end,
                           W* out, const BlockScales* scales) {
  constexpr WeightDType stored_as_w = std::same_as<W, bf16>   ? WeightDType::BF16
                                      : std::same_as<W, fp16> ? WeightDType::F16
                                                              : WeightDType::F32;
  auto convert = [](float v) {
    if constexpr (std::same_as<W, float>) return v;
    else return from_float<W>(v);
  };
  const std::int64_t cols = t.cols(), width = col_end - col_begin;
  const std::int64_t last = std::min(row_end, full_rows);
  for (std::int64_t r = row_begin; r < last; ++r) {
    W* dst = out + (r - row_begin) * width;
    const std::size_t first = static_cast<std::size_t>((r - row0) * cols + col_begin - col0);
    if (scales) {
      const TensorInfo& s = *scales->scale_inv;
      const std::size_t scale_row = static_cast<std::size_t>(r / scales->block_rows * s.cols());
      for (std::int64_t c = 0; c < width; ++c) {
        const float scale = weight_to_float(s.data, scale_row + (col_begin + c) / scales->block_cols, s.dtype);
        dst[c] = convert(weight_to_float(t.data, first + c, t.dtype) * scale);
      }
    } else if (t.dtype == stored_as_w) {
      std::memcpy(dst, t.data + first * sizeof(W), width * sizeof(W));
    } else {
      for (std::int64_t c = 0; c < width; ++c) dst[c] = convert(weight_to_float(t.data, first + c, t.dtype));
    }
  }
  const std::int64_t real_rows = std::max<std::int64_t>(0, last - row_begin);
  std::fill(out + real_rows * width, out + (row_end - row_begin) * width, W{0});
}

template <WeightValue W>
void SafetensorsCheckpoint::read_into(const TensorInfo& t, std::int64_t row_begin, std::int64_t row_end,
                                      std::int64_t col_begin, std::int64_t col_end, W* out,
                                      const BlockScales* scales) const {
  convert_weight_window(t, 0, 0, t.rows(), row_begin, row_end, col_begin, col_end, out, scales);
  const std::int64_t real_rows = std::max<std::int64_t>(0, std::min(row_end, t.rows()) - row_begin);
  bytes_read_ += static_cast<std::uint64_t>(real_rows) * (col_end - col_begin) * weight_dtype_size(t.dtype);
}

void SafetensorsCheckpoint::read_bytes_into(const TensorInfo& t, std::int64_t row_begin, std::int64_t row_end,
                                            std::int64_t col_begin, std::int64_t col_end, std::uint8_t* out) const {
  const std::size_t elem = weight_dtype_size(t.dtype), width = static_cast<std::size_t>(col_end - col_begin) * elem;
  const std::int64_t last = std::max(row_begin, std::min(row_end, t.rows()));
  for (std::int64_t r = row_begin; r < last; ++r)
    std::memcpy(out + (r - row_begin) * width, t.data + (static_cast<std::size_t>(r * t.cols() + col_begin)) * elem,
                width);
  std::fill(out + (last - row_begin) * width, out + (row_end - row_begin) * width, std::uint8_t{0});
  bytes_read_ += static_cast<std::uint64_t>(last - row_begin) * width;
}

#define LOCKSTEP_READ_INTO(W)                                                                                       \
  template void SafetensorsCheckpoint::read_into<W>(const TensorInfo&, std::int64_t, std::int64_t, std::int64_t,    \
                                                    std::int64_t, W*, const BlockScales*) const;                 \
  template void convert_weight_window<W>(const TensorInfo&, std::int64_t, std::int64_t, std::int64_t, std::int64_t, \
                                         std::int64_t, std::int64_t, std::int64_t, W*, const BlockScales*);
LOCKSTEP_READ_INTO(bf16)
LOCKSTEP_READ_INTO(fp16)
LOCKSTEP_READ_INTO(float)
#undef LOCKSTEP_READ_INTO

}  // namespace lockstep
