// What the model and tool tests share: a fresh scratch directory, text
// files, random weights, a weights file and a committed checkpoint of them.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/safetensors.h"
#include "test_util.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::test {

// <tmp>/<name>_<pid>, empty.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// One line per string (a JSON-lines or text file).
inline void write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << "\n";
}

// The model's parameters as a safetensors weights file (what rwkv-train
// writes as rwkv-final.safetensors), for the tools to load.
inline void write_weights(Rwkv4Model& model, const std::string& path) {
  checkpoint::NamedTensors tensors;
  for (const NamedTensor& e : model.params().entries()) tensors.emplace_back(e.name, e.value);
  checkpoint::write_safetensors(path, tensors);
}

// Tensor i of params <- random values in [lo, hi) from seed + i.
inline void fill_random(ParameterStore& params, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  for (NamedTensor& e : params.entries()) e.value.copy_from(random_tensor(e.value.shape(), DType::F32, seed++, lo, hi));
}

// A committed checkpoint of step `step` under root holding params as the
// parameters and as both AdamW moments; returns its directory.
inline std::string save_checkpoint(const ParameterStore& params, const std::string& root, int64_t step) {
  checkpoint::SaveRequest request;
  request.step = step;
  for (const NamedTensor& e : params.entries()) {
    request.tensors.push_back({e.name, "param", e.value, {}, {}});
    request.tensors.push_back({e.name, "adam_m", e.value, {}, {}});
    request.tensors.push_back({e.name, "adam_v", e.value, {}, {}});
  }
  return checkpoint::CheckpointStore(root, 0, 0).save(request);
}

}  // namespace rwkv::test
