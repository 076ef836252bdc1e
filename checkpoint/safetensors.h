// safetensors: the ecosystem's inspectable tensor file (Hugging Face).
//
//   u64 (little-endian) N | N bytes of JSON header | data
//   header: {"__metadata__": {"key": "value", ...},
//            "<name>": {"dtype": "F32", "shape": [d0, d1], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the start of the data and must tile it exactly.
//
// We write the header padded with spaces to a multiple of 8 bytes (so every
// tensor's data is 8-byte aligned), tensors in the order given, atomically
// (temporary name, fsync, rename). The reader validates everything against the
// file length and names the file and tensor in every error.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/file_io.h"

namespace rwkv::checkpoint {

// "F32", "F64", "BF16", "I32", "I64", "U16".
const char* safetensors_dtype(DType dtype);
DType dtype_from_safetensors(const std::string& name, const std::string& file);

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

// Writes tensors (copied from any device) to path atomically.
void write_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;  // byte offsets in the data section
  };
  const std::vector<Entry>& entries() const { return entries_; }  // in data order
  const Metadata& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const Entry& entry(const std::string& name) const;
  // A CPU copy of one tensor.
  Tensor read(const std::string& name) const;
  // The tensor's bytes where the file is mapped (valid while this object lives).
  const uint8_t* data_of(const Entry& e) const { return file_.data() + data_start_ + e.begin; }
  // Reads into an existing tensor (any device) after checking dtype and shape.
  void read_into(const std::string& name, Tensor& out) const;
  const std::string& path() const { return file_.path(); }

 private:
  rwkv::MappedFile file_;
  uint64_t data_start_ = 0;
  std::vector<Entry> entries_;
  Metadata metadata_;
};

}  // namespace rwkv::checkpoint
