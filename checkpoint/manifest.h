// The manifest of a checkpoint: what a checkpoint directory holds, written
// last (before the commit marker) so a reader can trust everything it names.
//
//   <checkpoint.dir>/step_00000120/
//       rank00000.safetensors   one file per rank: its slices of every tensor
//       manifest.json           this manifest
//       COMMITTED               the commit marker, written after everything else is durable
//
// Every tensor is listed by its global reference name and kind ("param",
// "adam_m", "adam_v"), with its global shape and the slices each file holds
// (offset and shape within the global tensor), so a loader in any other
// parallel layout can find the pieces it needs. Each file carries its size
// and an XXH3-64 hash of its bytes; each slice the hash of its own bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv::checkpoint {

constexpr const char* kManifestFormat = "rwkv-dist-checkpoint";
constexpr int kManifestVersion = 1;
constexpr const char* kManifestName = "manifest.json";
constexpr const char* kCommitMarker = "COMMITTED";

struct ManifestFile {
  std::string name;  // relative to the checkpoint directory
  int64_t rank = 0;
  uint64_t bytes = 0;
  std::string xxh3;  // 16 lowercase hex digits of XXH3-64 over the whole file
};

struct ManifestSlice {
  std::string file;  // a ManifestFile name
  std::string key;   // the tensor's name inside that safetensors file
  Shape offset;      // where the slice starts in the global tensor
  Shape shape;       // the slice's shape
  // XXH3-64 of the slice's bytes, so a rank that reads only some slices can
  // verify just those (empty in checkpoints written before it was recorded:
  // the loader then hashes the whole file).
  std::string xxh3;
};

struct ManifestTensor {
  std::string name;  // global reference name, e.g. "blocks.3.att.key.weight"
  std::string kind;  // "param", "adam_m" or "adam_v"
  DType dtype = DType::F32;
  Shape shape;       // global shape
  std::vector<ManifestSlice> slices;
};

struct ManifestLayout {
  int64_t dp = 1, tp = 1, pp = 1;
  bool zero = false;
};

struct Manifest {
  int64_t step = 0;             // optimizer steps completed
  int64_t tokens = 0;           // tokens trained on
  ManifestLayout layout;
  std::string config_yaml;      // the canonical config of the run
  std::string config_digest;
  std::vector<ManifestFile> files;
  std::vector<ManifestTensor> tensors;

  std::string to_json() const;
  // Parses and validates (format, version, every field's type, slices inside
  // their tensors); errors name `origin` and the field.
  static Manifest from_json(const std::string& text, const std::string& origin);
  const ManifestTensor* find(const std::string& name, const std::string& kind) const;
};

// 16 lowercase hex digits of XXH3-64 over a whole file (read in chunks).
std::string file_xxh3(const std::string& path);
// The same over a buffer in memory.
std::string bytes_xxh3(const void* data, size_t bytes);

}  // namespace rwkv::checkpoint
