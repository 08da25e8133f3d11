// model.h5 (`lockstep convert`, model/hdf5_checkpoint.h) read as the safetensors it came from:
// every slice, fp8 scales, padding rows and errors, reads from several threads at once; and
// datasets stored as other tools may store them (chunked, compressed, another byte order),
// read through HDF5 itself.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "model/hdf5_checkpoint.h"
#include "model/model_config.h"
#include "model/safetensors_reader.h"
#include "model/weight_source.h"

namespace lockstep {
namespace {

const std::string kFixtures = LOCKSTEP_FIXTURES_DIR;

// model.h5 (`lockstep convert`) reads every slice as the safetensors it came from: bf16 rows and
// columns, fp32 biases, block-fp8 tensors through their scales, padding rows; and the same errors.
TEST(Hdf5Weights, ReadsWhatTheSafetensorsHold) {
  const std::string dir = ::testing::TempDir() + "/hdf5_weights_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* model : {"deepseek-v3-fp8-tiny", "qwen2-tiny"}) {
    SCOPED_TRACE(model);
    const SafetensorsCheckpoint ckpt(kFixtures + "/" + model);
    const std::string path = dir + "/" + model + ".h5";
    std::size_t calls = 0;
    write_hdf5_checkpoint(ckpt, path, [&](std::size_t done, std::size_t total) {
      ++calls;
      EXPECT_EQ(total, ckpt.tensor_count());
      EXPECT_EQ(done, calls);
    });
    EXPECT_EQ(calls, ckpt.tensor_count());
    EXPECT_THROW(write_hdf5_checkpoint(ckpt, path), CheckpointError);  // never overwrites
    const ModelConfig c = ModelConfig::from_dir(kFixtures + "/" + model);
    const CheckpointWeights from_safetensors(ckpt, c.fp8_block_rows, c.fp8_block_cols);
    const Hdf5Weights from_hdf5(path, c.fp8_block_rows, c.fp8_block_cols);
    EXPECT_EQ(from_hdf5.tensor_count(), ckpt.tensor_count());
    EXPECT_EQ(from_hdf5.hdf5_read_tensors(), 0u);  // all read at their offsets
    for (const std::string& name : ckpt.tensor_names()) {
      if (name.ends_with("_scale_inv")) continue;  // read through their weights
      const TensorInfo& t = ckpt.get(name);
      // An inner window (column and row offsets), and all rows plus two of padding.
      const std::int64_t r0 = t.rows() / 3, r1 = t.rows() - t.rows() / 4, c0 = t.cols() / 5, c1 = t.cols() - t.cols() / 3;
      for (const auto& [a0, a1, b0, b1] : {std::array<std::int64_t, 4>{r0, r1, c0, c1},
                                            std::array<std::int64_t, 4>{0, t.rows() + 2, 0, t.cols()}}) {
        SCOPED_TRACE(name + " rows " + std::to_string(a0) + ".." + std::to_string(a1));
        const DType to = t.dtype == WeightDType::F32 ? DType::F32 : DType::BF16;
        const std::size_t bytes = static_cast<std::size_t>((a1 - a0) * (b1 - b0)) * (to == DType::F32 ? 4 : 2);
        std::vector<std::uint8_t> want(bytes, 0xAA), got(bytes, 0x55);
        from_safetensors.read_into(name, t.shape, a0, a1, b0, b1, to, want.data());
        from_hdf5.read_into(name, t.shape, a0, a1, b0, b1, to, got.data());
        EXPECT_EQ(got, want);
      }
    }
    EXPECT_GT(from_hdf5.bytes_read(), 0u);
    const std::string name = ckpt.tensor_names().front();
    EXPECT_THROW(from_hdf5.read<bf16>("model.no_such_tensor", {4}, 0, 4, 0, 1), CheckpointError);
    try {
      from_hdf5.read<bf16>(name, {1, 2, 3}, 0, 1, 0, 1);
      ADD_FAILURE() << "a wrong shape was read";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("expected [1, 2, 3] for this config.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Hdf5Weights(dir + "/missing.h5"), CheckpointError);
  std::filesystem::remove_all(dir);
}


// A dataset as another tool may write it: `layout` contiguous or chunked (and compressed where
// HDF5 has deflate), stored as `file_type`, holding bf16 bits (row r, column c) = value(r, c).
std::uint16_t value(std::int64_t r, std::int64_t c) { return static_cast<std::uint16_t>(0x3c00 + r * 131 + c * 7); }

void write_dataset(hid_t file, const std::string& name, std::int64_t rows, std::int64_t cols, hid_t file_type,
                   bool chunked) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  const hid_t space = H5Screate_simple(2, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) {
    const hsize_t chunk[2] = {8, std::min<hsize_t>(8, dims[1])};
    ASSERT_GE(H5Pset_chunk(dcpl, 2, chunk), 0);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) ASSERT_GE(H5Pset_deflate(dcpl, 4), 0);
  }
  const hid_t set = H5Dcreate2(file, name.c_str(), file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(set, 0);
  std::vector<std::uint16_t> bits;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) bits.push_back(value(r, c));
  ASSERT_GE(H5Dwrite(set, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits.data()), 0);
  const hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, 4);
  const hid_t scalar = H5Screate(H5S_SCALAR);
  const hid_t dtype = H5Acreate2(set, "dtype", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(dtype, str, "BF16");
  const std::vector<std::int64_t> hub_shape = cols == 1 ? std::vector<std::int64_t>{rows} : std::vector{rows, cols};
  const hsize_t n = hub_shape.size();
  const hid_t shape_space = H5Screate_simple(1, &n, nullptr);
  const hid_t shape = H5Acreate2(set, "shape", H5T_STD_I64LE, shape_space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(shape, H5T_NATIVE_INT64, hub_shape.data());
  for (hid_t a : {dtype, shape}) H5Aclose(a);
  for (hid_t sp : {scalar, shape_space, space}) H5Sclose(sp);
  H5Tclose(str);
  H5Pclose(dcpl);
  H5Dclose(set);
}

// What Hdf5Weights does not read at an offset (chunked and compressed datasets, another byte
// order) it reads through H5Dread, with the same values; reads from several threads at once,
// of either kind, give what one read gives.
TEST(Hdf5Weights, ReadsChunkedAndForeignDatasetsThroughHdf5) {
  const std::string dir = ::testing::TempDir() + "/hdf5_layouts_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.h5";
  const std::int64_t rows = 37, cols = 29;
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  write_dataset(file, "contiguous.weight", rows, cols, H5T_STD_U16LE, false);
  write_dataset(file, "chunked.weight", rows, cols, H5T_STD_U16LE, true);
  write_dataset(file, "big_endian.weight", rows, cols, H5T_STD_U16BE, false);
  write_dataset(file, "chunked.bias", rows, 1, H5T_STD_U16LE, true);
  H5Fclose(file);

  const Hdf5Weights w(path);
  EXPECT_EQ(w.tensor_count(), 4u);
  EXPECT_EQ(w.hdf5_read_tensors(), 3u);  // all but contiguous.weight
  for (const std::string name : {"contiguous.weight", "chunked.weight", "big_endian.weight", "chunked.bias"}) {
    SCOPED_TRACE(name);
    const std::int64_t n = name.ends_with("bias") ? 1 : cols;
    const std::vector<std::int64_t> shape = n == 1 ? std::vector<std::int64_t>{rows} : std::vector{rows, n};
    // A window of rows and columns, and every row plus three of padding.
    for (const auto& [r0, r1, c0, c1] : {std::array<std::int64_t, 4>{5, 30, n / 4, n - n / 3},
                                         std::array<std::int64_t, 4>{0, rows + 3, 0, n}}) {
      const std::vector<bf16> got = w.read<bf16>(name, shape, r0, r1, c0, c1);
      ASSERT_EQ(got.size(), static_cast<std::size_t>((r1 - r0) * (c1 - c0)));
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c)
          ASSERT_EQ(got[(r - r0) * (c1 - c0) + c - c0].bits, r < rows ? value(r, c) : 0) << "row " << r << " col " << c;
      // The same through float (the converting path).
      const std::vector<float> f = w.read<float>(name, shape, r0, r1, c0, c1);
      for (std::size_t i = 0; i < f.size(); ++i) ASSERT_EQ(f[i], bf16_to_float(got[i])) << i;
    }
    // Eight threads, a few rows each, into one buffer.
    const std::vector<bf16> whole = w.read_all<bf16>(name, shape);
    std::vector<bf16> pieces(whole.size());
    std::vector<std::thread> readers;
    for (std::int64_t r = 0; r < rows; r += 5)
      readers.emplace_back([&, r] {
        const std::int64_t end = std::min(rows, r + 5);
        w.read_into(name, shape, r, end, 0, n, DType::BF16, pieces.data() + r * n);
      });
    for (std::thread& t : readers) t.join();
    EXPECT_EQ(std::memcmp(pieces.data(), whole.data(), whole.size() * sizeof(bf16)), 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lockstep
