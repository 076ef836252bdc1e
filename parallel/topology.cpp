#include "parallel/topology.h"

#include <cstdint>

#include "core/error.h"

namespace rwkv::parallel {

const char* group_name(GroupKind kind) {
  switch (kind) {
    case GroupKind::Tp: return "tp";
    case GroupKind::Dp: return "dp";
    case GroupKind::Pp: return "pp";
    case GroupKind::ModelParallel: return "mp";
  }
  return "?";
}

namespace {

std::string factors_str(int64_t dp, int64_t tp, int64_t pp) { return str_cat("dp=", dp, " x tp=", tp, " x pp=", pp); }

// A layout for `world` ranks close to the requested one: keep tp and pp when
// they divide the world (only dp changes), else plain data parallelism.
std::string suggestion(int64_t tp, int64_t pp, int64_t world) {
  if (tp >= 1 && pp >= 1 && world % (tp * pp) == 0)
    return str_cat(factors_str(world / (tp * pp), tp, pp), " = ", world);
  return str_cat(factors_str(world, 1, 1), " = ", world);
}

}  // namespace

void Topology::validate(int dp, int tp, int pp, int world) {
  RWKV_CHECK(world >= 1, "parallel layout: the world has ", world, " ranks, expected at least 1");
  if (dp < 1 || tp < 1 || pp < 1) {
    const char* which = dp < 1 ? "parallel.dp" : tp < 1 ? "parallel.tp" : "parallel.pp";
    RWKV_FAIL("parallel layout ", factors_str(dp, tp, pp), " for ", world, " ranks: ", which,
              " must be at least 1\n  ---> HINT: set every factor to 1 or more, e.g. ",
              suggestion(tp < 1 ? 1 : tp, pp < 1 ? 1 : pp, world));
  }
  const int64_t product = int64_t{dp} * tp * pp;  // int64: three ints cannot overflow it
  if (product != world) {
    RWKV_FAIL("parallel layout ", factors_str(dp, tp, pp), " = ", product, " ranks, but mpirun started ", world,
              " rank", world == 1 ? "" : "s", "\n  ---> HINT: start ", product, " ranks (mpirun -np ", product,
              "), or choose parallel.dp/tp/pp with a product of ", world, ", e.g. ", suggestion(tp, pp, world));
  }
}

Topology::Topology(int dp, int tp, int pp, int world, int rank)
    : dp_(dp), tp_(tp), pp_(pp), world_(world), rank_(rank) {
  validate(dp, tp, pp, world);
  RWKV_CHECK(rank >= 0 && rank < world, "parallel layout ", layout_str(), ": rank ", rank, " is outside [0, ", world,
             ")");
}

Coordinates Topology::coords_of(int rank) const {
  RWKV_CHECK(rank >= 0 && rank < world_, "Topology::coords_of: rank ", rank, " outside [0, ", world_, ")");
  Coordinates c;
  c.tp = rank % tp_;
  c.dp = (rank / tp_) % dp_;
  c.pp = rank / (tp_ * dp_);
  return c;
}

int Topology::rank_of(const Coordinates& c) const {
  RWKV_CHECK(c.tp >= 0 && c.tp < tp_ && c.dp >= 0 && c.dp < dp_ && c.pp >= 0 && c.pp < pp_,
             "Topology::rank_of: coordinates (tp ", c.tp, ", dp ", c.dp, ", pp ", c.pp, ") outside ", layout_str());
  return c.tp + tp_ * (c.dp + dp_ * c.pp);
}

int Topology::group_size(GroupKind kind) const {
  switch (kind) {
    case GroupKind::Tp: return tp_;
    case GroupKind::Dp: return dp_;
    case GroupKind::Pp: return pp_;
    case GroupKind::ModelParallel: return tp_ * pp_;
  }
  return 0;
}

int Topology::group_rank(GroupKind kind) const {
  const Coordinates c = coords();
  switch (kind) {
    case GroupKind::Tp: return c.tp;
    case GroupKind::Dp: return c.dp;
    case GroupKind::Pp: return c.pp;
    case GroupKind::ModelParallel: return c.tp + tp_ * c.pp;
  }
  return 0;
}

int Topology::group_index(GroupKind kind) const {
  // The coordinates a group does NOT vary over, flattened in rank order.
  const Coordinates c = coords();
  switch (kind) {
    case GroupKind::Tp: return c.dp + dp_ * c.pp;
    case GroupKind::Dp: return c.tp + tp_ * c.pp;
    case GroupKind::Pp: return c.tp + tp_ * c.dp;
    case GroupKind::ModelParallel: return c.dp;
  }
  return 0;
}

std::vector<int> Topology::group_ranks(GroupKind kind) const {
  const Coordinates me = coords();
  std::vector<int> ranks;
  switch (kind) {
    case GroupKind::Tp:
      for (int t = 0; t < tp_; ++t) ranks.push_back(rank_of({t, me.dp, me.pp}));
      break;
    case GroupKind::Dp:
      for (int d = 0; d < dp_; ++d) ranks.push_back(rank_of({me.tp, d, me.pp}));
      break;
    case GroupKind::Pp:
      for (int p = 0; p < pp_; ++p) ranks.push_back(rank_of({me.tp, me.dp, p}));
      break;
    case GroupKind::ModelParallel:
      for (int p = 0; p < pp_; ++p)
        for (int t = 0; t < tp_; ++t) ranks.push_back(rank_of({t, me.dp, p}));
      break;
  }
  return ranks;
}

std::vector<std::vector<int>> Topology::all_groups(GroupKind kind) const {
  // Walk the ranks in order; a rank starts a new group when it is its group's
  // first member, so groups come out sorted by their first rank.
  std::vector<std::vector<int>> groups;
  for (int r = 0; r < world_; ++r) {
    Topology other(dp_, tp_, pp_, world_, r);
    if (other.group_rank(kind) == 0) groups.push_back(other.group_ranks(kind));
  }
  return groups;
}

int Topology::prev_stage_rank() const {
  const Coordinates c = coords();
  return c.pp == 0 ? -1 : rank_of({c.tp, c.dp, c.pp - 1});
}

int Topology::next_stage_rank() const {
  const Coordinates c = coords();
  return c.pp == pp_ - 1 ? -1 : rank_of({c.tp, c.dp, c.pp + 1});
}

std::string Topology::layout_str() const { return str_cat(factors_str(dp_, tp_, pp_), " = ", world_, " ranks"); }

std::string Topology::str() const {
  const Coordinates c = coords();
  return str_cat("rank ", rank_, " of ", world_, ": tp ", c.tp, "/", tp_, ", dp ", c.dp, "/", dp_, ", pp ", c.pp, "/",
                 pp_);
}

}  // namespace rwkv::parallel
