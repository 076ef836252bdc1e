// The rank grid of 3-D parallelism: world = dp x tp x pp.
//
// Ranks are numbered with tp varying fastest, then dp, then pp:
//
//   rank = tp_rank + tp * (dp_rank + dp * pp_rank)
//
// so the ranks of one tensor-parallel group are neighbours (they exchange the
// most data, every layer, and belong on one node), the data-parallel replicas
// of a stage come next, and pipeline stages are the outermost, coarsest split.
//
// Worked example (Megatron style): dp=2, tp=2, pp=2 on 8 ranks
//
//   rank   0  1  2  3  4  5  6  7
//   tp     0  1  0  1  0  1  0  1
//   dp     0  0  1  1  0  0  1  1
//   pp     0  0  0  0  1  1  1  1
//
//   tp groups (same dp, pp):        [0,1] [2,3] [4,5] [6,7]
//   dp groups (same tp, pp):        [0,2] [1,3] [4,6] [5,7]
//   pp groups (same tp, dp):        [0,4] [1,5] [2,6] [3,7]
//   model-parallel groups (same dp: one full copy of the model, tp x pp ranks):
//                                   [0,1,4,5] [2,3,6,7]
//
// Gradients are averaged over a dp group; activations flow along a pp group
// (rank 0 sends to rank 4); the tp group splits every layer's channels.
//
// Pure logic: no MPI, so it is unit-tested and usable from tools that only
// check a configuration.
#pragma once

#include <string>
#include <vector>

namespace rwkv::parallel {

enum class GroupKind { Tp, Dp, Pp, ModelParallel };
const char* group_name(GroupKind kind);  // "tp", "dp", "pp", "mp"

struct Coordinates {
  int tp = 0, dp = 0, pp = 0;
  bool operator==(const Coordinates&) const = default;
};

class Topology {
 public:
  // Throws rwkv::Error unless dp, tp, pp >= 1, dp * tp * pp == world and
  // 0 <= rank < world. The message names every factor and the world size:
  //   "parallel layout dp=2 x tp=2 x pp=2 = 8 ranks, but mpirun started 6 ranks
  //     ---> HINT: ..."
  // Every rank computes the same message from the same inputs, so a wrong
  // layout fails identically everywhere (see mpi_runtime.h: run_ranks prints it once).
  Topology(int dp, int tp, int pp, int world, int rank);

  // The same checks without building a Topology (for config tools).
  static void validate(int dp, int tp, int pp, int world);

  int dp() const { return dp_; }
  int tp() const { return tp_; }
  int pp() const { return pp_; }
  int world() const { return world_; }
  int rank() const { return rank_; }

  Coordinates coords() const { return coords_of(rank_); }
  int tp_rank() const { return coords().tp; }
  int dp_rank() const { return coords().dp; }
  int pp_rank() const { return coords().pp; }

  Coordinates coords_of(int rank) const;
  int rank_of(const Coordinates& c) const;  // tp + tp_size * (dp + dp_size * pp)

  // The ranks of this rank's group of a kind, in group-rank order (group rank
  // i is the i-th entry; for ModelParallel: tp fastest, then pp).
  std::vector<int> group_ranks(GroupKind kind) const;
  // Every group of a kind, in increasing order of its first rank.
  std::vector<std::vector<int>> all_groups(GroupKind kind) const;
  // This rank's index within its group of a kind, and the group's size.
  int group_rank(GroupKind kind) const;
  int group_size(GroupKind kind) const;
  // Which group of a kind this rank belongs to: 0 .. world/group_size - 1, the
  // same value on every member (the colour of MPI_Comm_split).
  int group_index(GroupKind kind) const;

  // Pipeline neighbours: the rank holding the previous / next stage with the
  // same tp and dp coordinates, or -1 on the first / last stage.
  int prev_stage_rank() const;
  int next_stage_rank() const;
  bool is_first_stage() const { return pp_rank() == 0; }
  bool is_last_stage() const { return pp_rank() == pp_ - 1; }

  // "rank 5 of 8: tp 1/2, dp 0/2, pp 1/2"
  std::string str() const;
  // The layout, "dp=2 x tp=2 x pp=2 = 8 ranks".
  std::string layout_str() const;

 private:
  int dp_, tp_, pp_, world_, rank_;
};

}  // namespace rwkv::parallel
