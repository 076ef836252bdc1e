// ProcessGroups: the MPI groups hold exactly the ranks Topology names, and
// collectives on them stay inside them. The 3-D layouts need 4 ranks.
#include <gtest/gtest.h>

#include "core/error.h"
#include "mpi_test_util.h"
#include "parallel/process_groups.h"

namespace rwkv::parallel {
namespace {

using namespace rwkv::parallel::test;

constexpr GroupKind kKinds[] = {GroupKind::Tp, GroupKind::Dp, GroupKind::Pp, GroupKind::ModelParallel};

// Every group's members (gathered over the group itself) are Topology's list,
// and a sum over the group adds exactly its members, in group-rank order.
void check_groups(int dp, int tp, int pp) {
  ProcessGroups groups(dp, tp, pp);
  const Topology& topo = groups.topology();
  ASSERT_EQ(topo.rank(), world_rank());
  for (GroupKind kind : kKinds) {
    MpiCommunicator& g = groups.group(kind);
    EXPECT_EQ(g.size(), topo.group_size(kind)) << group_name(kind);
    EXPECT_EQ(g.rank(), topo.group_rank(kind)) << group_name(kind);
    Tensor me = Tensor::from_vector<int32_t>({topo.rank()}, {1});
    Tensor members = Tensor::empty({g.size()}, DType::I32);
    g.all_gather(me, members);
    const std::vector<int> expected = topo.group_ranks(kind);
    EXPECT_EQ(members.to_vector<int32_t>(), std::vector<int32_t>(expected.begin(), expected.end()))
        << group_name(kind) << " group of " << topo.str();

    Tensor x = rank_tensor<float>(topo.rank(), 21, {17});
    g.all_reduce_sum(x);
    std::vector<float> ref(17);
    for (int64_t i = 0; i < 17; ++i) {
      float acc = static_cast<float>(value_at(expected[0], 21, i));
      for (size_t q = 1; q < expected.size(); ++q) acc += static_cast<float>(value_at(expected[q], 21, i));
      ref[static_cast<size_t>(i)] = acc;
    }
    EXPECT_TRUE(bitwise_equal(x.to_vector<float>(), ref)) << group_name(kind);
  }
  // Activations flow down the pipeline: each stage adds its rank and passes on.
  Tensor act = Tensor::zeros({5}, DType::F64);
  if (!topo.is_first_stage()) groups.pp().recv(act, topo.pp_rank() - 1);
  for (int64_t i = 0; i < 5; ++i) act.data<double>()[i] += topo.rank();
  if (!topo.is_last_stage()) groups.pp().send(act, topo.pp_rank() + 1);
  double expected_sum = 0;
  for (int p = 0; p <= topo.pp_rank(); ++p) expected_sum += topo.rank_of({topo.tp_rank(), topo.dp_rank(), p});
  EXPECT_EQ(act.to_vector<double>()[4], expected_sum);
  // The prev/next helpers name the same world ranks as the pp group does.
  if (!topo.is_first_stage()) {
    EXPECT_EQ(topo.prev_stage_rank(), topo.group_ranks(GroupKind::Pp)[static_cast<size_t>(topo.pp_rank() - 1)]);
  }
  groups.world().barrier();
}

TEST(MpiGroups, DpTwoTpTwoOnFourRanks) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check_groups(2, 2, 1);
}

TEST(MpiGroups, DpTwoPpTwoOnFourRanks) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check_groups(2, 1, 2);
}

TEST(MpiGroups, OneDimensionalLayoutsOnAnyWorld) {
  const int n = world_size();
  check_groups(n, 1, 1);
  check_groups(1, n, 1);
  check_groups(1, 1, n);
}

TEST(MpiGroups, AWrongLayoutFailsOnEveryRankWithTheSameMessage) {
  const int n = world_size();
  std::string message;
  try {
    ProcessGroups groups(2, 2, 2);
    if (n != 8) ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    message = e.what();
  }
  if (n == 8) GTEST_SKIP() << "8 ranks make this layout valid";
  EXPECT_NE(message.find(str_cat("parallel layout dp=2 x tp=2 x pp=2 = 8 ranks, but mpirun started ", n)),
            std::string::npos)
      << message;
  uint64_t h = 1469598103934665603ull;
  for (char c : message) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  EXPECT_TRUE(same_on_all_ranks(h));
}

}  // namespace
}  // namespace rwkv::parallel
