// The HDF5 checkpoint layout (see hdf5_checkpoint.h).
#include "model/hdf5_checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

// What the reader's buffers hold: the stored bits as this host keeps them.
hid_t memory_type(WeightDType t) {
  switch (t) {
    case WeightDType::F32: return H5T_NATIVE_FLOAT;
    case WeightDType::BF16:
    case WeightDType::F16: return H5T_NATIVE_UINT16;
    case WeightDType::F8_E4M3: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_UINT8;
}

// The stored type that is `to` itself, whose bits a read copies unchanged.
bool stored_as(WeightDType stored, DType to) {
  return (stored == WeightDType::BF16 && to == DType::BF16) || (stored == WeightDType::F16 && to == DType::F16) ||
         (stored == WeightDType::F32 && to == DType::F32);
}

// Where a dataset's `bytes` start in the file, when they can be read there as the memory type:
// one contiguous block in the file itself (what write_hdf5_checkpoint writes), written, of that
// very type. -1 otherwise (chunked or compressed, external, never written, another byte order),
// for H5Dread, which undoes all of those.
std::int64_t contiguous_offset(hid_t set, WeightDType dtype, std::uint64_t bytes, std::uint64_t file_size) {
  Handle dcpl(H5Dget_create_plist(set), H5Pclose, "dataset creation list");
  if (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_external_count(dcpl) != 0) return -1;
  Handle type(H5Dget_type(set), H5Tclose, "dataset type");
  if (H5Tequal(type, memory_type(dtype)) <= 0) return -1;
  H5D_space_status_t status;
  if (H5Dget_space_status(set, &status) < 0 || status != H5D_SPACE_STATUS_ALLOCATED) return -1;
  const haddr_t at = H5Dget_offset(set);  // from the file's first byte, a user block included
  if (at == HADDR_UNDEF || at > file_size || file_size - at < bytes) return -1;
  return static_cast<std::int64_t>(at);
}

// [offset, offset + bytes) of the file into out, in as many reads as the kernel takes.
void read_exactly(int fd, std::int64_t offset, std::size_t bytes, std::uint8_t* out, const std::string& what) {
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, out, bytes, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw CheckpointError(what + ": " + (n < 0 ? std::strerror(errno) : "the file ends early"));
    out += n;
    offset += n;
    bytes -= static_cast<std::size_t>(n);
  }
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

// A file access list for HDF5's own reads (the metadata, and datasets not read at their offset):
// through MPI-IO where HDF5 is parallel (each rank on its own).
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
  // Contiguous and unfiltered (HDF5's default, said here because the reader depends on it): each
  // tensor's bits in one block of the file that a rank reads its rows of at their offset.
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset creation list");
  check(H5Pset_layout(dcpl, H5D_CONTIGUOUS), "contiguous layout");
  const std::vector<std::string> names = source.tensor_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const TensorInfo& t = source.get(names[i]);
    const hsize_t dims[2] = {static_cast<hsize_t>(t.rows()), static_cast<hsize_t>(t.cols())};
    Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose, names[i] + " dataspace");
    Handle set(H5Dcreate2(file, names[i].c_str(), stored_type(t.dtype), space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
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
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw CheckpointError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw CheckpointError(path + ": cannot stat (" + std::strerror(errno) + ")");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
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
      t.offset = contiguous_offset(set, t.dtype, static_cast<std::uint64_t>(t.rows * t.cols) * weight_dtype_size(t.dtype),
                                   file_size);
      tensors_[name] = std::move(t);
    }
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    H5Fclose(file_);
    throw;
  }
}

Hdf5Weights::~Hdf5Weights() {
  if (fd_ >= 0) ::close(fd_);
  if (file_ >= 0) H5Fclose(file_);
}

std::size_t Hdf5Weights::hdf5_read_tensors() const {
  return static_cast<std::size_t>(
      std::count_if(tensors_.begin(), tensors_.end(), [](const auto& t) { return t.second.offset < 0; }));
}

const Hdf5Weights::Tensor& Hdf5Weights::get(const std::string& name, const std::vector<std::int64_t>& expected) const {
  const auto it = tensors_.find(name);
  check_tensor(path_, name, it != tensors_.end(), it != tensors_.end() ? it->second.shape : expected, expected);
  return it->second;
}

void Hdf5Weights::read_stored(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1,
                              std::int64_t c0, std::int64_t c1, void* out) const {
  const std::size_t elem = weight_dtype_size(t.dtype), width = static_cast<std::size_t>(c1 - c0) * elem;
  if (r1 <= r0 || width == 0) return;
  auto* dst = static_cast<std::uint8_t*>(out);
  if (t.offset >= 0) {
    const std::string what = path_ + ": reading " + name;
    const std::int64_t row_bytes = t.cols * static_cast<std::int64_t>(elem);
    if (c0 == 0 && c1 == t.cols) {
      read_exactly(fd_, t.offset + r0 * row_bytes, static_cast<std::size_t>(r1 - r0) * width, dst, what);
    } else {  // each row's columns are a run of their own
      for (std::int64_t r = r0; r < r1; ++r, dst += width)
        read_exactly(fd_, t.offset + r * row_bytes + c0 * static_cast<std::int64_t>(elem), width, dst, what);
    }
  } else {
    const std::lock_guard<std::mutex> lock(hdf5_);
    Handle set(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), H5Dclose, path_ + ": opening " + name);
    Handle space(H5Dget_space(set), H5Sclose, name + " dataspace");
    const hsize_t start[2] = {static_cast<hsize_t>(r0), static_cast<hsize_t>(c0)};
    const hsize_t count[2] = {static_cast<hsize_t>(r1 - r0), static_cast<hsize_t>(c1 - c0)};
    check(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), name + " hyperslab");
    Handle memory(H5Screate_simple(2, count, nullptr), H5Sclose, name + " memory space");
    check(H5Dread(set, memory_type(t.dtype), memory, space, H5P_DEFAULT, dst), path_ + ": reading " + name);
  }
  bytes_read_ += static_cast<std::uint64_t>(r1 - r0) * width;
}

void Hdf5Weights::check_window(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1,
                               std::int64_t c0, std::int64_t c1) const {
  if (c0 < 0 || c1 > t.cols || c0 > c1 || r0 < 0 || r0 > r1)
    throw CheckpointError(path_ + ": tensor " + name + " has no columns [" + std::to_string(c0) + ", " +
                          std::to_string(c1) + ") or rows from " + std::to_string(r0));
}

void Hdf5Weights::read_padded(const std::string& name, const Tensor& t, std::int64_t r0, std::int64_t r1,
                              std::int64_t c0, std::int64_t c1, void* out) const {
  const std::int64_t last = std::max(r0, std::min(r1, t.rows));
  const std::size_t row_bytes = static_cast<std::size_t>(c1 - c0) * weight_dtype_size(t.dtype);
  read_stored(name, t, r0, last, c0, c1, out);
  auto* bytes = static_cast<std::uint8_t*>(out);
  std::fill(bytes + (last - r0) * row_bytes, bytes + (r1 - r0) * row_bytes, std::uint8_t{0});
}

Fp8Blocks Hdf5Weights::fp8_blocks(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end() || it->second.dtype != WeightDType::F8_E4M3) return {};
  check_fp8_scales(name, tensors_.count(fp8_scale_name(name)) != 0);
  return {fp8_block_rows_, fp8_block_cols_};
}

void Hdf5Weights::read_fp8_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                                std::int64_t r1, std::int64_t c0, std::int64_t c1, std::uint8_t* out) const {
  const Tensor& t = get(name, shape);
  if (t.dtype != WeightDType::F8_E4M3)
    throw CheckpointError(path_ + ": tensor " + name + " is stored as " + weight_dtype_name(t.dtype) +
                          ", not as block fp8: its codes cannot be read as stored");
  check_window(name, t, r0, r1, c0, c1);
  read_padded(name, t, r0, r1, c0, c1, out);
}

void Hdf5Weights::read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0,
                            std::int64_t r1, std::int64_t c0, std::int64_t c1, DType to, void* out) const {
  const Tensor& t = get(name, shape);
  check_window(name, t, r0, r1, c0, c1);
  const std::int64_t last = std::max(r0, std::min(r1, t.rows));
  if (stored_as(t.dtype, to)) return read_padded(name, t, r0, r1, c0, c1, out);  // the stored bits are asked for
  // Otherwise the slice's stored bits (rows past the end are padding), then the conversion safetensors' reads use.
  std::vector<std::uint8_t> raw(static_cast<std::size_t>((last - r0) * (c1 - c0)) * weight_dtype_size(t.dtype));
  read_stored(name, t, r0, last, c0, c1, raw.data());
  TensorInfo window{name, "", t.dtype, {last - r0, c1 - c0}, raw.data(), raw.size()};
  std::vector<std::uint8_t> scale_raw;
  TensorInfo scale_window;
  BlockScales scales;
  if (t.dtype == WeightDType::F8_E4M3) {
    const std::string scale_name = fp8_scale_name(name);
    check_fp8_scales(name, tensors_.count(scale_name) != 0);
    const Tensor& s = get(scale_name, fp8_scale_shape(t.rows, t.cols, fp8_block_rows_, fp8_block_cols_));
    scale_raw.resize(static_cast<std::size_t>(s.rows * s.cols) * weight_dtype_size(s.dtype));
    read_stored(scale_name, s, 0, s.rows, 0, s.cols, scale_raw.data());
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
