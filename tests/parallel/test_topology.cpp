// Topology: rank <-> coordinates, groups and validation, without MPI.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "parallel/topology.h"

namespace rwkv::parallel {
namespace {

using Groups = std::vector<std::vector<int>>;

std::string error_of(int dp, int tp, int pp, int world) {
  try {
    Topology::validate(dp, tp, pp, world);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The worked example of topology.h: dp=2, tp=2, pp=2 on 8 ranks.
TEST(Topology, WorkedExample222) {
  Topology t(2, 2, 2, 8, 5);
  EXPECT_EQ(t.coords(), (Coordinates{1, 0, 1}));
  EXPECT_EQ(t.all_groups(GroupKind::Tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(t.all_groups(GroupKind::Dp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(t.all_groups(GroupKind::Pp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(t.all_groups(GroupKind::ModelParallel), (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}}));
  EXPECT_EQ(t.group_ranks(GroupKind::Tp), (std::vector<int>{4, 5}));
  EXPECT_EQ(t.group_ranks(GroupKind::Dp), (std::vector<int>{5, 7}));
  EXPECT_EQ(t.group_ranks(GroupKind::Pp), (std::vector<int>{1, 5}));
  EXPECT_EQ(t.prev_stage_rank(), 1);
  EXPECT_EQ(t.next_stage_rank(), -1);
  EXPECT_TRUE(t.is_last_stage());
  EXPECT_EQ(t.str(), "rank 5 of 8: tp 1/2, dp 0/2, pp 1/2");
  EXPECT_EQ(t.layout_str(), "dp=2 x tp=2 x pp=2 = 8 ranks");
}

// The two 4-rank layouts of the MPI tests.
TEST(Topology, FourRankLayouts) {
  Topology a(2, 2, 1, 4, 0);  // dp=2, tp=2
  EXPECT_EQ(a.all_groups(GroupKind::Tp), (Groups{{0, 1}, {2, 3}}));
  EXPECT_EQ(a.all_groups(GroupKind::Dp), (Groups{{0, 2}, {1, 3}}));
  EXPECT_EQ(a.all_groups(GroupKind::Pp), (Groups{{0}, {1}, {2}, {3}}));
  Topology b(2, 1, 2, 4, 3);  // dp=2, pp=2
  EXPECT_EQ(b.all_groups(GroupKind::Tp), (Groups{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(b.all_groups(GroupKind::Dp), (Groups{{0, 1}, {2, 3}}));
  EXPECT_EQ(b.all_groups(GroupKind::Pp), (Groups{{0, 2}, {1, 3}}));
  EXPECT_EQ(b.coords(), (Coordinates{0, 1, 1}));
  EXPECT_EQ(b.prev_stage_rank(), 1);
  Topology b0(2, 1, 2, 4, 1);
  EXPECT_EQ(b0.next_stage_rank(), 3);
  EXPECT_EQ(b0.prev_stage_rank(), -1);
  EXPECT_TRUE(b0.is_first_stage());
}

// Every layout of up to 24 ranks: the rank formula inverts, each kind's groups
// partition the world, group_rank/group_index agree with group_ranks, and
// every pair of kinds meets in exactly the expected way.
TEST(Topology, InvariantsOfEveryLayoutUpTo24Ranks) {
  int layouts = 0;
  for (int world = 1; world <= 24; ++world)
    for (int tp = 1; tp <= world; ++tp)
      for (int pp = 1; pp <= world; ++pp) {
        if (world % (tp * pp) != 0) continue;
        const int dp = world / (tp * pp);
        ++layouts;
        for (GroupKind kind : {GroupKind::Tp, GroupKind::Dp, GroupKind::Pp, GroupKind::ModelParallel}) {
          Topology t0(dp, tp, pp, world, 0);
          std::vector<int> seen(static_cast<size_t>(world), 0);
          const Groups groups = t0.all_groups(kind);
          EXPECT_EQ(static_cast<int>(groups.size()) * t0.group_size(kind), world);
          for (const auto& g : groups)
            for (int r : g) ++seen[static_cast<size_t>(r)];
          EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
          for (int r = 0; r < world; ++r) {
            Topology t(dp, tp, pp, world, r);
            const auto mine = t.group_ranks(kind);
            ASSERT_EQ(static_cast<int>(mine.size()), t.group_size(kind));
            EXPECT_EQ(mine[static_cast<size_t>(t.group_rank(kind))], r);
            EXPECT_EQ(groups[static_cast<size_t>(t.group_index(kind))], mine);
          }
        }
        for (int r = 0; r < world; ++r) {
          Topology t(dp, tp, pp, world, r);
          EXPECT_EQ(t.rank_of(t.coords()), r);
          EXPECT_EQ(t.coords().tp + tp * (t.coords().dp + dp * t.coords().pp), r);
          // tp groups are blocks of neighbouring ranks.
          const auto g = t.group_ranks(GroupKind::Tp);
          EXPECT_EQ(g.back() - g.front(), tp - 1);
          if (!t.is_last_stage()) {
            EXPECT_EQ(Topology(dp, tp, pp, world, t.next_stage_rank()).prev_stage_rank(), r);
          }
        }
      }
  EXPECT_GT(layouts, 100);
}

TEST(Topology, WrongWorldSizeNamesEveryFactorAndTheWorld) {
  const std::string e = error_of(2, 2, 2, 6);
  EXPECT_NE(e.find("parallel layout dp=2 x tp=2 x pp=2 = 8 ranks, but mpirun started 6 ranks"), std::string::npos) << e;
  EXPECT_NE(e.find("---> HINT: start 8 ranks (mpirun -np 8)"), std::string::npos) << e;
  // 6 ranks keep tp=2 x pp=1 when possible; here tp*pp = 4 does not divide 6.
  EXPECT_NE(e.find("e.g. dp=6 x tp=1 x pp=1 = 6"), std::string::npos) << e;
  const std::string f = error_of(1, 2, 1, 4);
  EXPECT_NE(f.find("dp=1 x tp=2 x pp=1 = 2 ranks, but mpirun started 4 ranks"), std::string::npos) << f;
  EXPECT_NE(f.find("e.g. dp=2 x tp=2 x pp=1 = 4"), std::string::npos) << f;
  EXPECT_NE(error_of(2, 1, 1, 1).find("but mpirun started 1 rank\n"), std::string::npos);
}

TEST(Topology, FactorsBelowOneAreErrors) {
  const std::string e = error_of(2, 0, 1, 4);
  EXPECT_NE(e.find("parallel layout dp=2 x tp=0 x pp=1 for 4 ranks: parallel.tp must be at least 1"), std::string::npos)
      << e;
  EXPECT_NE(error_of(-1, 1, 1, 4).find("parallel.dp must be at least 1"), std::string::npos);
  EXPECT_NE(error_of(1, 1, 0, 4).find("parallel.pp must be at least 1"), std::string::npos);
  // Products that overflow an int are still compared exactly.
  EXPECT_NE(error_of(65536, 65536, 2, 8).find("= 8589934592 ranks"), std::string::npos);
  EXPECT_EQ(error_of(2, 2, 2, 8), "");
  EXPECT_THROW(Topology(2, 2, 2, 8, 8), Error);
  EXPECT_THROW(Topology(2, 2, 2, 8, 0).coords_of(-1), Error);
  EXPECT_THROW(Topology(2, 2, 2, 8, 0).rank_of({2, 0, 0}), Error);
}

}  // namespace
}  // namespace rwkv::parallel
