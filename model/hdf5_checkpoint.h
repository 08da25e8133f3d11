// lockstep's HDF5 checkpoint layout (`lockstep convert`): the hub checkpoint's tensors in one
// file, model.h5, beside its config.json and tokenizer files. Each tensor is a dataset named as
// in the hub checkpoint, 2-D [rows, columns] (a vector [n, 1]), holding the stored bits (bf16
// and fp16 as 16-bit, fp8 as 8-bit unsigned integers, fp32 as floats) with the attributes
// `dtype` ("BF16", "F16", "F32", "F8_E4M3") and `shape` (the hub's). Datasets are contiguous
// and uncompressed, so a tensor's bits sit at one offset in the file: a rank reads only its rows
// and columns there, one large read per slice of whole rows (a memory-mapped safetensors shard
// faults its pages in one at a time), a read per row for a slice of columns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "model/safetensors_reader.h"
#include "model/weight_source.h"

namespace lockstep {

constexpr const char* kHdf5CheckpointFile = "model.h5";

// Writes every tensor of `source` into a new HDF5 file at `path` (which must not exist);
// progress(done, total) after each tensor. Throws CheckpointError on an HDF5 failure.
void write_hdf5_checkpoint(const SafetensorsCheckpoint& source, const std::string& path,
                           const std::function<void(std::size_t, std::size_t)>& progress = {});

// A WeightSource over model.h5, read as CheckpointWeights reads safetensors: the same
// conversions, fp8 block scales and errors. HDF5 gives the names, attributes, shapes and where
// each dataset's bits start; a contiguous dataset's rows are then read with pread(2), from any
// number of threads at once, straight into the caller's buffer when it asks for the stored type.
// Not MPI_File_read_at: the loader reads with several threads (parallel_weight_read.h) and MPI
// runs at MPI_THREAD_SERIALIZED, so MPI-IO reads would take turns; H5Dread under one lock, into
// a vector copied again, held a 7B load from the page cache onto an H200 to 1.7-5.5 GB/s, against
// 23-27 for safetensors. Not a mapping: pread asks for a slice in one large read (a parallel file
// system's way) and takes no page faults. Datasets stored otherwise (chunked or compressed by
// another tool, another byte order) are read with H5Dread through the MPI-IO driver, under one
// lock: HDF5 is not built thread-safe, and its MPI calls then come from one thread at a time, as
// MPI_THREAD_SERIALIZED asks (nothing else calls MPI while weights load).
class Hdf5Weights final : public WeightSource {
 public:
  Hdf5Weights(const std::string& path, int fp8_block_rows = 128, int fp8_block_cols = 128);
  ~Hdf5Weights() override;
  Hdf5Weights(const Hdf5Weights&) = delete;
  Hdf5Weights& operator=(const Hdf5Weights&) = delete;

  void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                 std::int64_t c0, std::int64_t c1, DType to, void* out) const override;
  std::uint64_t bytes_read() const override { return bytes_read_; }
  Fp8Blocks fp8_blocks(const std::string& name) const override;
  void read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                     std::int64_t c0, std::int64_t c1, std::uint8_t* out) const override;
  std::size_t tensor_count() const { return tensors_.size(); }
  // How many tensors are read through H5Dread rather than at their offset (none for what
  // write_hdf5_checkpoint writes).
  std::size_t hdf5_read_tensors() const;

 private:
  struct Tensor {
    WeightDType dtype = WeightDType::BF16;
    std::vector<std::int64_t> shape;
    std::int64_t rows = 0, cols = 0;
    std::int64_t offset = -1;  // of its stored bits in the file; -1: read through H5Dread
  };
  const Tensor& get(const std::string& name, const std::vector<std::int64_t>& expected_shape) const;
  // Rows [r0, r1) x columns [c0, c1) of a dataset's stored bits (r1 within its rows) into out.
  void read_stored(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1, std::int64_t c0,
                   std::int64_t c1, void* out) const;
  // The same for any r1, rows past the dataset's end zero.
  void read_padded(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1, std::int64_t c0,
                   std::int64_t c1, void* out) const;
  // CheckpointError unless the window's columns and first row are within the dataset.
  void check_window(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1, std::int64_t c0,
                    std::int64_t c1) const;

  std::string path_;
  std::int64_t file_ = -1;  // hid_t
  int fd_ = -1;             // the same file, for the positioned reads
  int fp8_block_rows_, fp8_block_cols_;
  std::map<std::string, Tensor> tensors_;
  mutable std::mutex hdf5_;  // H5Dread's
  mutable std::atomic<std::uint64_t> bytes_read_{0};
};

}  // namespace lockstep
