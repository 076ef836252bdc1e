#include "checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace rwkv::checkpoint {

using nlohmann::json;

const char* safetensors_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U16: return "U16";
  }
  return "?";
}

DType dtype_from_safetensors(const std::string& name, const std::string& file) {
  for (DType d : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64, DType::U16})
    if (name == safetensors_dtype(d)) return d;
  RWKV_FAIL(file, ": tensor dtype '", name, "' is not supported (expected F32, F64, BF16, I32, I64 or U16)");
}

void write_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    RWKV_CHECK(!name.empty() && name != "__metadata__", path, ": invalid tensor name '", name, "'");
    RWKV_CHECK(!header.contains(name), path, ": tensor '", name, "' appears twice");
    header[name] = {{"dtype", safetensors_dtype(t.dtype())}, {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - (text.size() % 8)) % 8, ' ');  // 8-byte aligned data
  rwkv::AtomicFileWriter out(path);
  uint64_t n = text.size();
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(n >> (8 * i));
  out.write(le, 8);
  out.write(text);
  for (const auto& [name, t] : tensors) {
    Tensor host = t.is_cpu() ? t : t.to(Device::cpu());
    out.write(host.raw_data(), host.nbytes());
  }
  out.commit();
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint64_t size = file_.size();
  RWKV_CHECK(size >= 8, path, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(file_.data()[i]) << (8 * i);
  RWKV_CHECK(n <= size - 8, path, ": header length ", n, " runs past the end of the file (", size,
             " bytes)\n  ---> HINT: the file is truncated or not safetensors");
  data_start_ = 8 + n;
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(file_.data()) + 8, reinterpret_cast<const char*>(file_.data()) + 8 + n);
  } catch (const json::exception& e) {
    RWKV_FAIL(path, ": header is not valid JSON (", e.what(), ")");
  }
  RWKV_CHECK(header.is_object(), path, ": header is not a JSON object");
  const uint64_t data_size = size - data_start_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      RWKV_CHECK(it->is_object(), path, ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        RWKV_CHECK(m->is_string(), path, ": __metadata__.", m.key(), " is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const json& e = *it;
    const std::string where = str_cat(path, ": tensor '", it.key(), "'");
    RWKV_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"), where,
               ": expected an object with dtype, shape and data_offsets");
    Entry entry;
    entry.name = it.key();
    RWKV_CHECK(e["dtype"].is_string(), where, ": dtype is not a string");
    entry.dtype = dtype_from_safetensors(e["dtype"].get<std::string>(), path);
    RWKV_CHECK(e["shape"].is_array(), where, ": shape is not an array");
    for (const json& d : e["shape"]) {
      RWKV_CHECK(d.is_number_unsigned(), where, ": shape holds a non-integer or negative dimension");
      entry.shape.push_back(d.get<int64_t>());
    }
    const json& off = e["data_offsets"];
    RWKV_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), where,
               ": data_offsets must be [begin, end]");
    entry.begin = off[0].get<uint64_t>();
    entry.end = off[1].get<uint64_t>();
    RWKV_CHECK(entry.begin <= entry.end && entry.end <= data_size, where, ": data_offsets [", entry.begin, ", ",
               entry.end, "] lie outside the ", data_size, " bytes of data\n  ---> HINT: the file is truncated");
    const uint64_t expected = static_cast<uint64_t>(shape_numel(entry.shape)) * dtype_size(entry.dtype);
    RWKV_CHECK(entry.end - entry.begin == expected, where, ": holds ", entry.end - entry.begin, " bytes but ",
               safetensors_dtype(entry.dtype), shape_str(entry.shape), " needs ", expected);
    entries_.push_back(entry);
  }
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t cursor = 0;
  for (const Entry& e : entries_) {
    RWKV_CHECK(e.begin == cursor, path, ": tensor '", e.name, "' starts at byte ", e.begin, " but the previous ends at ",
               cursor, " (the data must be tiled without gaps or overlaps)");
    cursor = e.end;
  }
  RWKV_CHECK(cursor == data_size, path, ": ", data_size - cursor, " bytes of data after the last tensor");
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return e;
  RWKV_FAIL(path(), ": no tensor named '", name, "'");
}

Tensor SafetensorsFile::read(const std::string& name) const {
  const Entry& e = entry(name);
  Tensor t = Tensor::empty(e.shape, e.dtype);
  std::memcpy(t.raw_data(), file_.data() + data_start_ + e.begin, e.end - e.begin);
  return t;
}

void SafetensorsFile::read_into(const std::string& name, Tensor& out) const {
  const Entry& e = entry(name);
  RWKV_CHECK(e.dtype == out.dtype() && e.shape == out.shape(), path(), ": tensor '", name, "' is ",
             safetensors_dtype(e.dtype), shape_str(e.shape), ", expected ", safetensors_dtype(out.dtype()),
             shape_str(out.shape()), "\n  ---> HINT: the file was written for another model shape or dtype");
  // Straight from the mapping: no host copy in between (a 14B model's
  // weights would otherwise pass through a second buffer of their size).
  device_copy(out.device(), out.raw_data(), Device::cpu(), data_of(e), e.end - e.begin);
}

}  // namespace rwkv::checkpoint
