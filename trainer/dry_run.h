// rwkv-train --dry-run: the model of a config partitioned across its
// parallel layout, every rank simulated in one process and nothing
// allocated: each rank's parameter slices (names, shapes, where they sit in
// the global tensors), its parameter count and memory (planner/memory_model.h),
// and the checkpoint manifest the layout's ranks would write, validated.
//
//   rwkv-train --config configs/rwkv4-14b.yaml --dry-run [--dry-run-dir DIR]
//              --set parallel.dp=2 --set parallel.tp=4 --set parallel.pp=8
//
// The manifest is what rwkv-train's checkpoint of that layout would record
// (train_loop.cpp, save_request): dp rank 0 of every (tp, pp) position writes
// its slices of every parameter and both AdamW moments, tp rank 0 alone the
// tp-replicated tensors, vocabulary padding rows are left out, and every rank
// has a file (an empty one on dp ranks > 0). The files do not exist: their
// byte counts are the tensor payloads and their hashes are blank.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "planner/memory_model.h"
#include "trainer/config.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::trainer {

// One parameter as declare_rwkv4_parameters declares it, without its data.
struct ParameterShape {
  std::string name;
  Shape shape;          // this rank's slice
  Shape global_shape;   // the whole tensor
  Shape global_offset;  // where the slice starts in it
  bool tp_replicated = false;
};

// The parameter shapes of `part` (as declare_rwkv4_parameters(shape, ., ., part)
// declares them), without allocating the model: the declaration runs on a
// miniature whose every dimension is a distinct small number, and each
// dimension is then mapped back to the real one.
std::vector<ParameterShape> declare_rwkv4_shapes(const Rwkv4Shape& shape, const Rwkv4Partition& part);

struct DryRunRank {
  int64_t rank = 0, dp_rank = 0, tp_rank = 0, pp_rank = 0;
  Rwkv4Partition part;
  int64_t parameters = 0;  // the sum of the declared slices
  planner::MemoryBreakdown memory;
};

struct DryRunResult {
  std::vector<DryRunRank> ranks;
  checkpoint::Manifest manifest;
  std::string manifest_path;
  int64_t slices = 0;
};

// Simulates every rank of config's layout; writes DIR/manifest.json and
// validates it (throws rwkv::Error naming the first problem).
DryRunResult dry_run(const TrainConfig& config, const std::string& dir);

// Checks that `manifest` holds every tensor of `whole` (the whole model's
// declaration) in every kind (param, adam_m, adam_v) exactly once, with its
// global shape, and that its slices tile the global shape: inside it, pairwise
// disjoint, and adding up to its element count.
void validate_manifest_coverage(const checkpoint::Manifest& manifest, const std::vector<ParameterShape>& whole);

// The per-rank table and the manifest summary.
std::string format_dry_run(const TrainConfig& config, const DryRunResult& result);

}  // namespace rwkv::trainer
