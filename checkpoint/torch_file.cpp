#include "checkpoint/torch_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_io.h"

namespace rwkv::checkpoint {
namespace {

std::string zip_error_text(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// f16 bits -> f32 (exact: every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf, nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal: rebias 15 -> 127
  } else if (mantissa == 0) {
    bits = sign;  // zero
  } else {  // subnormal half: mantissa 2^-24 units, normal as a float
    int shift = 0;
    uint32_t m = mantissa;
    while (!(m & 0x400)) m <<= 1, ++shift;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The row-major strides of shape, which the reader requires (a state dict's
// tensors are contiguous; a view with other strides would need a gather).
std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> stride(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) stride[i - 1] = stride[i] * shape[i];
  return stride;
}

bool same_layout(const Shape& shape, const std::vector<int64_t>& stride) {
  if (stride.size() != shape.size()) return false;
  const std::vector<int64_t> want = contiguous_strides(shape);
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] > 1 && stride[i] != want[i]) return false;  // a size-1 dimension's stride is never used
  return true;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  RWKV_CHECK(fd >= 0, "cannot open ", path, " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  RWKV_CHECK(rc == 0, "fsync of ", path, " failed: ", std::strerror(errno));
}

}  // namespace

TorchSaveFormat torch_save_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\3\4", 4) == 0) return TorchSaveFormat::Zip;
  if (in.gcount() >= 2 && static_cast<uint8_t>(magic[0]) == 0x80) return TorchSaveFormat::Legacy;
  return TorchSaveFormat::None;
}

TorchFile::TorchFile(const std::string& path) : path_(path) {
  RWKV_CHECK(file_exists(path), path, ": no such file");
  RWKV_CHECK(torch_save_format(path) != TorchSaveFormat::Legacy, path,
             ": a torch.save file in the format before PyTorch 1.6 (a bare pickle, not a zip)\n  ---> HINT: "
             "load and save it again with PyTorch >= 1.6, or convert it to safetensors");
  int code = 0;
  zip_ = zip_open(path.c_str(), ZIP_RDONLY, &code);
  RWKV_CHECK(zip_ != nullptr, path, ": not a readable zip archive (", zip_error_text(code),
             ")\n  ---> HINT: PyTorch checkpoints are zip archives (torch.save since 1.6); safetensors files "
             "need no conversion");
  try {
    // The pickle: "<archive>/data.pkl", the archive folder being any name.
    const zip_int64_t entries = zip_get_num_entries(zip_, 0);
    zip_int64_t pickle_index = -1;
    for (zip_int64_t i = 0; i < entries && pickle_index < 0; ++i) {
      const std::string name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0);
      const size_t slash = name.find('/');
      if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
        pickle_index = i;
        prefix_ = name.substr(0, slash + 1);
      }
    }
    RWKV_CHECK(pickle_index >= 0, path, ": a zip archive without <archive>/data.pkl, so not a torch.save file");
    zip_stat_t st;
    zip_stat_index(zip_, static_cast<zip_uint64_t>(pickle_index), 0, &st);
    std::string pickle(static_cast<size_t>(st.size), '\0');
    zip_file_t* f = zip_fopen_index(zip_, static_cast<zip_uint64_t>(pickle_index), 0);
    RWKV_CHECK(f != nullptr, path, ": cannot open ", prefix_, "data.pkl: ", zip_strerror(zip_));
    const zip_int64_t got = zip_fread(f, pickle.data(), pickle.size());
    zip_fclose(f);
    RWKV_CHECK(got == static_cast<zip_int64_t>(pickle.size()), path, ": ", prefix_, "data.pkl is damaged (read ",
               got, " of ", pickle.size(), " bytes)");
    const zip_int64_t order = zip_name_locate(zip_, (prefix_ + "byteorder").c_str(), 0);
    if (order >= 0) {
      char buf[8] = {0};
      zip_file_t* bf = zip_fopen_index(zip_, static_cast<zip_uint64_t>(order), 0);
      const zip_int64_t n = bf ? zip_fread(bf, buf, sizeof buf - 1) : -1;
      if (bf) zip_fclose(bf);
      RWKV_CHECK(n >= 0 && std::string(buf, static_cast<size_t>(n)) == "little", path, ": byteorder is '",
                 std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "'; only little-endian files are read");
    }
    records_ = read_torch_state_dict(pickle, path);
    for (const TorchTensorRecord& r : records_) {
      const TorchStorageType type = torch_storage_type(r.storage_type, path);
      const std::string entry = prefix_ + "data/" + r.storage_key;
      const zip_int64_t index = zip_name_locate(zip_, entry.c_str(), 0);
      RWKV_CHECK(index >= 0, path, ": tensor '", r.name, "' is in storage ", entry, ", which the archive lacks");
      zip_stat_index(zip_, static_cast<zip_uint64_t>(index), 0, &st);
      const int64_t numel = shape_numel(r.shape);
      RWKV_CHECK(st.size == static_cast<zip_uint64_t>(r.storage_numel) * type.element_size, path, ": ", entry,
                 " holds ", st.size, " bytes; its ", r.storage_numel, " elements of ", r.storage_type, " need ",
                 r.storage_numel * static_cast<int64_t>(type.element_size), "\n  ---> HINT: the file is truncated or damaged");
      RWKV_CHECK(r.storage_offset >= 0 && r.storage_offset + numel <= r.storage_numel, path, ": tensor '", r.name,
                 "' (", shape_str(r.shape), " at element ", r.storage_offset, ") runs past its storage of ",
                 r.storage_numel, " elements");
      for (int64_t d : r.shape) RWKV_CHECK(d >= 0, path, ": tensor '", r.name, "' has shape ", shape_str(r.shape));
      RWKV_CHECK(same_layout(r.shape, r.stride), path, ": tensor '", r.name, "' is not contiguous (shape ",
                 shape_str(r.shape), ", strides ", shape_str(r.stride), ")\n  ---> HINT: save tensor.contiguous()");
      infos_.push_back({r.name, type.dtype, r.shape});
    }
  } catch (...) {
    zip_discard(zip_);
    throw;
  }
}

TorchFile::~TorchFile() {
  if (zip_) zip_discard(zip_);  // read-only: nothing to write back
}

void TorchFile::read_into(const std::string& name, Tensor& out) const {
  const Info& want = info(name);
  RWKV_CHECK(want.dtype == out.dtype() && want.shape == out.shape(), path_, ": tensor '", name, "' is ",
             dtype_name(want.dtype), shape_str(want.shape), ", expected ", dtype_name(out.dtype()),
             shape_str(out.shape()), "\n  ---> HINT: the file was written for another model shape or dtype");
  const TorchTensorRecord& r = records_[static_cast<size_t>(&want - infos_.data())];
  const TorchStorageType type = torch_storage_type(r.storage_type, path_);
  const std::string entry = prefix_ + "data/" + r.storage_key;
  zip_file_t* f = zip_fopen(zip_, entry.c_str(), 0);
  RWKV_CHECK(f != nullptr, path_, ": cannot open ", entry, ": ", zip_strerror(zip_));
  auto read_exact = [&](void* dst, uint64_t bytes) {
    auto* p = static_cast<char*>(dst);
    while (bytes > 0) {
      const zip_int64_t got = zip_fread(f, p, bytes);
      RWKV_CHECK(got > 0, path_, ": ", entry, " ends early or is damaged (reading tensor '", name, "')");
      p += got;
      bytes -= static_cast<uint64_t>(got);
    }
  };
  try {
    // Skip to the tensor's first element (storages shared by several tensors).
    std::vector<char> skip(1 << 16);
    for (uint64_t left = static_cast<uint64_t>(r.storage_offset) * type.element_size; left > 0;) {
      const uint64_t n = std::min<uint64_t>(left, skip.size());
      read_exact(skip.data(), n);
      left -= n;
    }
    const int64_t numel = out.numel();
    if (type.is_half) {
      std::vector<uint16_t> half(static_cast<size_t>(numel));
      read_exact(half.data(), half.size() * 2);
      Tensor host = out.is_cpu() ? out : Tensor::empty(out.shape(), DType::F32);
      float* dst = host.data<float>();
      for (int64_t i = 0; i < numel; ++i) dst[i] = half_to_float(half[static_cast<size_t>(i)]);
      if (!out.is_cpu()) out.copy_from(host);
    } else if (out.is_cpu()) {
      read_exact(out.raw_data(), out.nbytes());
    } else {
      Tensor host = Tensor::empty(out.shape(), out.dtype());
      read_exact(host.raw_data(), host.nbytes());
      out.copy_from(host);
    }
  } catch (...) {
    zip_fclose(f);
    throw;
  }
  zip_fclose(f);
}

void write_torch_file(const std::string& path, const NamedTensors& tensors, const std::string& archive_name) {
  RWKV_CHECK(!archive_name.empty() && archive_name.find('/') == std::string::npos,
             "write_torch_file: archive name '", archive_name, "' must be one folder name");
  std::vector<TorchTensorRecord> records;
  std::vector<Tensor> host;  // libzip reads the buffers at zip_close: they live until then
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    host.push_back(t.is_cpu() ? t : t.to(Device::cpu()));
    TorchTensorRecord r;
    r.name = name;
    r.storage_key = std::to_string(i);
    r.storage_type = torch_storage_name(t.dtype());
    r.storage_numel = t.numel();
    r.shape = t.shape();
    r.stride = contiguous_strides(t.shape());
    records.push_back(std::move(r));
  }
  const std::string pickle = write_torch_state_dict(records);
  static const std::string kByteOrder = "little", kVersion = "3\n";
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  int code = 0;
  zip_t* z = zip_open(temp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  RWKV_CHECK(z != nullptr, "cannot create ", temp, ": ", zip_error_text(code));
  auto add = [&](const std::string& name, const void* data, size_t bytes) {
    zip_source_t* src = zip_source_buffer(z, data, bytes, 0);
    const zip_int64_t index = src ? zip_file_add(z, (archive_name + "/" + name).c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (index < 0) {
      if (src) zip_source_free(src);
      const std::string why = zip_strerror(z);
      zip_discard(z);
      throw Error(str_cat("cannot add ", name, " to ", path, ": ", why));
    }
    // torch.save stores, never compresses: the data can then be read (or
    // mapped) in place.
    zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  };
  add("data.pkl", pickle.data(), pickle.size());  // first: torch takes the archive name from it
  add("byteorder", kByteOrder.data(), kByteOrder.size());
  for (size_t i = 0; i < host.size(); ++i) add("data/" + records[i].storage_key, host[i].raw_data(), host[i].nbytes());
  add("version", kVersion.data(), kVersion.size());
  if (zip_close(z) != 0) {
    const std::string why = zip_strerror(z);
    zip_discard(z);
    remove_file_if_exists(temp);
    throw Error(str_cat("cannot write ", path, ": ", why, "\n  ---> HINT: check free space and permissions"));
  }
  fsync_path(temp);
  std::filesystem::rename(temp, path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_path(dir.empty() ? "." : dir);
}

}  // namespace rwkv::checkpoint
