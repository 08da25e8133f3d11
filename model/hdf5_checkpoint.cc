// The HDF5 checkpoint layout (see hdf5_checkpoint.h).
#include "model/hdf5_checkpoint.h"

#include <hdf5.h>
#include <mpi.h>

#include <filesystem>

#include "model/model_config.h"
#include "model/weight_type.h"

namespace lockstep {
namespace {

// An HDF5 handle closed by `close` (H5Fclose, H5Dclose, ...) when it goes.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id < 0) throw CheckpointError("HDF5: " + what + " failed");
  }
  ~Handle() { close_(id_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(herr_t rc, const std::string& what) {
  if (rc < 0) throw CheckpointError("HDF5: " + what + " failed");
}

hid_t stored_type(WeightDType t) {
  switch (t) {
    case WeightDType::F32: return H5T_IEEE_F32LE;
    case WeightDType::BF16:
    case WeightDType::F16: return H5T_STD_U16LE;
    case WeightDType::F8_E4M3: return H5T_STD_U8LE;
  }
  return H5T_STD_U8LE;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(type, value.size()), "string size");
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Handle attr(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, std::string("attribute ") + name);
  check(H5Awrite(attr, type, value.data()), std::string("attribute ") + name);
}

std::string read_string_attribute(hid_t object, const char* name, const std::string& where) {
  if (H5Aexists(object, name) <= 0) throw CheckpointError(where + ": no `" + name + "` attribute");
  Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, where + " attribute " + name);
  Handle type(H5Aget_type(attr), H5Tclose, where + " attribute type");
  std::string value(H5Tget_size(type), '\0');
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(mem, value.size()), "string size");
  check(H5Aread(attr, mem, value.data()), where + " attribute " + name);
  return value.substr(0, value.find('\0'));
}

// A file access list that reads through MPI-IO where HDF5 is parallel (each rank on its own).
hid_t file_access() {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#ifdef H5_HAVE_PARALLEL
  int mpi = 0;
  MPI_Initialized(&mpi);
  if (mpi && fapl >= 0) H5Pset_fapl_mpio(fapl, MPI_COMM_SELF, MPI_INFO_NULL);
#endif
  return fapl;
}

}  // namespace

void write_hdf5_checkpoint(const SafetensorsCheckpoint& source, const std::string& path,
                           const std::function<void(std::size_t, std::size_t)>& progress) {
  if (std::filesystem::exists(path)) throw CheckpointError(path + " exists already");
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), H5Fclose, "creating " + path);
  const std::vector<std::string> names = source.tensor_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const TensorInfo& t = source.get(names[i]);
    const hsize_t dims[2] = {static_cast<hsize_t>(t.rows()), static_cast<hsize_t>(t.cols())};
    Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose, names[i] + " dataspace");
    Handle set(H5Dcreate2(file, names[i].c_str(), stored_type(t.dtype), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
               H5Dclose, "creating dataset " + names[i]);
    if (t.bytes) check(H5Dwrite(set, stored_type(t.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data), "writing " + names[i]);
    write_string_attribute(set, "dtype", weight_dtype_name(t.dtype));
    const hsize_t rank = t.shape.size();
    Handle shape_space(H5Screate_simple(1, &rank, nullptr), H5Sclose, "shape space");
    Handle shape(H5Acreate2(set, "shape", H5T_STD_I64LE, shape_space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                 names[i] + " shape");
    if (rank) check(H5Awrite(shape, H5T_NATIVE_INT64, t.shape.data()), names[i] + " shape");
    if (progress) progress(i + 1, names.size());
  }
}

Hdf5Weights::Hdf5Weights(const std::string& path, int fp8_block_rows, int fp8_block_cols)
    : path_(path), fp8_block_rows_(fp8_block_rows), fp8_block_cols_(fp8_block_cols) {
  if (!std::filesystem::exists(path))
    throw CheckpointError(path + " does not exist; `lockstep convert` writes it from a safetensors checkpoint");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as CheckpointError, not printed stacks
  Handle fapl(file_access(), H5Pclose, "file access list");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  if (file_ < 0) throw CheckpointError(path + ": not a readable HDF5 file");
  try {
    H5G_info_t info;
    check(H5Gget_info(file_, &info), path + " index");
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t n = H5Lget_name_by_idx(file_, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      std::string name(static_cast<std::size_t>(std::max<ssize_t>(n, 0)), '\0');
      H5Lget_name_by_idx(file_, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
      const std::string where = path + ": " + name;
      Handle set(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + where);
      Tensor t;
      t.dtype = parse_weight_dtype(read_string_attribute(set, "dtype", where), where);
      Handle space(H5Dget_space(set), H5Sclose, where + " dataspace");
      hsize_t dims[2] = {0, 0};
      if (H5Sget_simple_extent_ndims(space) != 2) throw CheckpointError(where + " is not a 2-D dataset");
      H5Sget_simple_extent_dims(space, dims, nullptr);
      t.rows = static_cast<std::int64_t>(dims[0]);
      t.cols = static_cast<std::int64_t>(dims[1]);
      Handle shape(H5Aopen(set, "shape", H5P_DEFAULT), H5Aclose, where + " shape attribute");
      Handle shape_space(H5Aget_space(shape), H5Sclose, where + " shape");
      t.shape.resize(static_cast<std::size_t>(H5Sget_simple_extent_npoints(shape_space)));
      if (!t.shape.empty()) check(H5Aread(shape, H5T_NATIVE_INT64, t.shape.data()), where + " shape");
      tensors_[name] = std::move(t);
    }
  } catch (...) {
    H5Fclose(file_);
    throw;
  }
}

Hdf5Weights::~Hdf5Weights() {
  if (file_ >= 0) H5Fclose(file_);
}

const Hdf5Weights::Tensor& Hdf5Weights::get(const std::string& name, const std::vector<std::int64_t>& expected) const {
  const auto it = tensors_.find(name);
  check_tensor(path_, name, it != tensors_.end(), it != tensors_.end() ? it->second.shape : expected, expected);
  return it->second;
}

std::vector<std::uint8_t> Hdf5Weights::read_raw(const std::string& name, const Tensor& t, std::int64_t r0,
                                                std::int64_t r1, std::int64_t c0, std::int64_t c1) const {
  std::vector<std::uint8_t> raw(static_cast<std::size_t>((r1 - r0) * (c1 - c0)) * weight_dtype_size(t.dtype));
  if (raw.empty()) return raw;
  const std::lock_guard<std::mutex> lock(hdf5_);
  Handle set(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose, path_ + ": opening " + name);
  Handle space(H5Dget_space(set), H5Sclose, name + " dataspace");
  const hsize_t start[2] = {static_cast<hsize_t>(r0), static_cast<hsize_t>(c0)};
  const hsize_t count[2] = {static_cast<hsize_t>(r1 - r0), static_cast<hsize_t>(c1 - c0)};
  check(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), name + " hyperslab");
  Handle memory(H5Screate_simple(2, count, nullptr), H5Sclose, name + " memory space");
  check(H5Dread(set, stored_type(t.dtype), memory, space, H5P_DEFAULT, raw.data()), path_ + ": reading " + name);
  bytes_read_ += raw.size();
  return raw;
}

void Hdf5Weights::read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                            std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const {
  const Tensor& t = get(name, shape);
  if (c0 < 0 || c1 > t.cols || c0 > c1 || r0 < 0 || r0 > r1)
    throw CheckpointError(path_ + ": tensor " + name + " has no columns [" + std::to_string(c0) + ", " +
                          std::to_string(c1) + ") or rows from " + std::to_string(r0));
  // The slice's stored bits (rows past the end are padding), then the conversion safetensors' reads use.
  const std::int64_t last = std::max(r0, std::min(r1, t.rows));
  const std::vector<std::uint8_t> raw = read_raw(name, t, r0, last, c0, c1);
  TensorInfo window{name, "", t.dtype, {last - r0, c1 - c0}, raw.data(), raw.size()};
  std::vector<std::uint8_t> scale_raw;
  TensorInfo scale_window;
  BlockScales scales;
  if (t.dtype == WeightDType::F8_E4M3) {
    const std::string scale_name = fp8_scale_name(name);
    check_fp8_scales(name, tensors_.count(scale_name) != 0);
    const Tensor& s = get(scale_name, fp8_scale_shape(t.rows, t.cols, fp8_block_rows_, fp8_block_cols_));
    scale_raw = read_raw(scale_name, s, 0, s.rows, 0, s.cols);
    scale_window = TensorInfo{scale_name, "", s.dtype, {s.rows, s.cols}, scale_raw.data(), scale_raw.size()};
    scales = BlockScales{&scale_window, fp8_block_rows_, fp8_block_cols_};
  }
  const BlockScales* s = scales.scale_inv ? &scales : nullptr;
  if (to == DType::F32)
    return convert_weight_window(window, r0, c0, t.rows, r0, r1, c0, c1, static_cast<float*>(out), s);
  with_weight_type(to, [&]<HalfFloat W>(W) {
    convert_weight_window(window, r0, c0, t.rows, r0, r1, c0, c1, static_cast<W*>(out), s);
  });
}

}  // namespace lockstep
