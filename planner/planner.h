// The search: every layout of a world size that can run the model (tp
// dividing C and F, pp <= L, dp dividing the global batch), every micro-batch
// that splits a replica's share, ZeRO-1 and recompute on or off; each is
// evaluated (memory_model.h, time_model.h) and the ones that fit in the
// devices' usable memory are ranked by predicted tokens/s.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "planner/cluster.h"
#include "planner/cost_target.h"
#include "planner/layout.h"
#include "planner/memory_model.h"
#include "planner/model_spec.h"
#include "planner/time_model.h"

namespace rwkv::planner {

struct Plan {
  Layout layout;
  MemoryBreakdown memory;  // the rank that needs the most
  StepTime time;
  double memory_limit = 0;  // usable bytes per rank
  bool fits = false;
};

struct SearchOptions {
  int64_t world = 0;         // ranks; 0 = every device of the cluster
  int64_t global_batch = 0;  // sequences per optimizer step; 0 = the model's
  // Fixed parts of the layout (0 = search over them).
  int64_t dp = 0, tp = 0, pp = 0, micro_batch = 0;
  std::vector<bool> zero{false, true};       // the ZeRO-1 settings to try
  std::vector<bool> recompute{false, true};  // the recompute settings to try
  trainer::PipelineSchedule schedule = trainer::PipelineSchedule::OneFOneB;
  int64_t vocab_pad_multiple = 1;
  bool tp_across_nodes = false;  // tensor-parallel groups larger than a node
  int64_t max_micro_batch = 64;
};

struct SearchResult {
  int64_t world = 0, global_batch = 0;
  std::vector<Plan> plans;  // the ones that fit by tokens/s, then the others by memory
  int64_t fitting = 0;
};

double usable_memory(const Cluster& cluster, const CostTarget& target, int64_t world);
Plan evaluate(const ModelSpec& m, const Layout& layout, const Cluster& cluster, const CostTarget& target);

// Every candidate. Throws with a one-line explanation (and a hint) when no
// layout can run the model or none fits; the caller prints it and exits non-zero.
SearchResult search(const ModelSpec& m, const Cluster& cluster, const CostTarget& target, const SearchOptions& options);

}  // namespace rwkv::planner
