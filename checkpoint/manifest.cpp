#include "checkpoint/manifest.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checkpoint/safetensors.h"

namespace rwkv::checkpoint {

using nlohmann::json;

std::string Manifest::to_json() const {
  json j;
  j["format"] = kManifestFormat;
  j["version"] = kManifestVersion;
  j["step"] = step;
  j["tokens"] = tokens;
  j["layout"] = {{"dp", layout.dp}, {"tp", layout.tp}, {"pp", layout.pp}, {"zero", layout.zero}};
  j["config_digest"] = config_digest;
  j["config"] = config_yaml;
  j["files"] = json::array();
  for (const ManifestFile& f : files) j["files"].push_back({{"name", f.name}, {"rank", f.rank}, {"bytes", f.bytes}, {"xxh3", f.xxh3}});
  j["tensors"] = json::array();
  for (const ManifestTensor& t : tensors) {
    json slices = json::array();
    for (const ManifestSlice& s : t.slices) {
      json slice = {{"file", s.file}, {"key", s.key}, {"offset", s.offset}, {"shape", s.shape}};
      if (!s.xxh3.empty()) slice["xxh3"] = s.xxh3;
      slices.push_back(slice);
    }
    j["tensors"].push_back({{"name", t.name}, {"kind", t.kind}, {"dtype", safetensors_dtype(t.dtype)}, {"shape", t.shape}, {"slices", slices}});
  }
  return j.dump(1);
}

namespace {
const json& field(const json& j, const char* key, const std::string& where) {
  RWKV_CHECK(j.is_object() && j.contains(key), where, ": missing field '", key, "'");
  return j.at(key);
}
Shape shape_field(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  RWKV_CHECK(v.is_array(), where, ": '", key, "' is not an array");
  Shape s;
  for (const json& d : v) {
    RWKV_CHECK(d.is_number_unsigned(), where, ": '", key, "' holds a negative or non-integer value");
    s.push_back(d.get<int64_t>());
  }
  return s;
}
}  // namespace

Manifest Manifest::from_json(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    RWKV_FAIL(origin, ": not valid JSON (", e.what(), ")\n  ---> HINT: the checkpoint is damaged; use an earlier one");
  }
  try {
    RWKV_CHECK(field(j, "format", origin) == kManifestFormat, origin, ": format is not '", kManifestFormat, "'");
    RWKV_CHECK(field(j, "version", origin) == kManifestVersion, origin, ": manifest version ", field(j, "version", origin).dump(),
               " is not supported (this build reads version ", kManifestVersion, ")");
    Manifest m;
    m.step = field(j, "step", origin).get<int64_t>();
    m.tokens = field(j, "tokens", origin).get<int64_t>();
    const json& layout = field(j, "layout", origin);
    m.layout.dp = field(layout, "dp", origin + " layout").get<int64_t>();
    m.layout.tp = field(layout, "tp", origin + " layout").get<int64_t>();
    m.layout.pp = field(layout, "pp", origin + " layout").get<int64_t>();
    m.layout.zero = field(layout, "zero", origin + " layout").get<bool>();
    m.config_digest = field(j, "config_digest", origin).get<std::string>();
    m.config_yaml = field(j, "config", origin).get<std::string>();
    for (const json& f : field(j, "files", origin)) {
      m.files.push_back({field(f, "name", origin).get<std::string>(), field(f, "rank", origin).get<int64_t>(),
                         field(f, "bytes", origin).get<uint64_t>(), field(f, "xxh3", origin).get<std::string>()});
    }
    for (const json& t : field(j, "tensors", origin)) {
      ManifestTensor mt;
      mt.name = field(t, "name", origin).get<std::string>();
      const std::string where = str_cat(origin, ": tensor '", mt.name, "'");
      mt.kind = field(t, "kind", where).get<std::string>();
      mt.dtype = dtype_from_safetensors(field(t, "dtype", where).get<std::string>(), origin);
      mt.shape = shape_field(t, "shape", where);
      for (const json& s : field(t, "slices", where)) {
        ManifestSlice ms{field(s, "file", where).get<std::string>(), field(s, "key", where).get<std::string>(),
                         shape_field(s, "offset", where), shape_field(s, "shape", where),
                         s.contains("xxh3") ? s["xxh3"].get<std::string>() : std::string()};
        RWKV_CHECK(ms.offset.size() == mt.shape.size() && ms.shape.size() == mt.shape.size(), where,
                   ": a slice's offset/shape rank differs from the tensor's");
        for (size_t d = 0; d < mt.shape.size(); ++d)
          RWKV_CHECK(ms.offset[d] + ms.shape[d] <= mt.shape[d], where, ": slice ", shape_str(ms.offset), "+",
                     shape_str(ms.shape), " lies outside ", shape_str(mt.shape));
        bool known = false;
        for (const ManifestFile& f : m.files) known = known || f.name == ms.file;
        RWKV_CHECK(known, where, ": slice names file '", ms.file, "', which the manifest does not list");
        mt.slices.push_back(ms);
      }
      m.tensors.push_back(mt);
    }
    return m;
  } catch (const json::exception& e) {
    RWKV_FAIL(origin, ": a field has the wrong type (", e.what(), ")");
  }
}

const ManifestTensor* Manifest::find(const std::string& name, const std::string& kind) const {
  for (const ManifestTensor& t : tensors)
    if (t.name == name && t.kind == kind) return &t;
  return nullptr;
}

namespace {
std::string hex64(uint64_t h) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}
}  // namespace

std::string bytes_xxh3(const void* data, size_t bytes) { return hex64(XXH3_64bits(data, bytes)); }

std::string file_xxh3(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  RWKV_CHECK(f != nullptr, path, ": cannot open to hash");
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) XXH3_64bits_update(state, buffer.data(), n);
  std::fclose(f);
  const uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return hex64(h);
}

}  // namespace rwkv::checkpoint
