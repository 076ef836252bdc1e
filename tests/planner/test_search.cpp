// The search and the time model: ranked plans for 14B on 64 A100s, the
// pipeline-bubble and communication formulas, clear errors for requests that
// cannot work, and the units of the command line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "planner/planner.h"
#include "planner/units.h"

namespace rwkv::planner {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PlannerSearch, FourteenBillionOnSixtyFourA100s) {
  const ModelSpec m = pile_model("14B");
  const Cluster c = cluster_preset("a100-80g", 8);
  const SearchResult r = search(m, c, target_preset("gpu-bf16"), SearchOptions{});
  EXPECT_EQ(r.world, 64);
  EXPECT_EQ(r.global_batch, 128);
  ASSERT_GT(r.fitting, 0);
  for (int64_t i = 0; i < r.fitting; ++i) {
    const Plan& p = r.plans[static_cast<size_t>(i)];
    EXPECT_TRUE(p.fits);
    EXPECT_LE(p.memory.total, p.memory_limit);
    EXPECT_EQ(p.layout.world(), 64);
    EXPECT_EQ(p.layout.global_batch(), 128);
    EXPECT_GT(p.time.mfu, 0.0);
    EXPECT_LT(p.time.mfu, 0.8);  // at most the GEMM efficiency
    if (i > 0) {
      EXPECT_LE(p.time.tokens_per_s, r.plans[static_cast<size_t>(i - 1)].time.tokens_per_s);
    }
  }
  // Plain data parallelism without ZeRO-1 replicates 16 bytes a parameter: 14B x 16 = 211 GiB.
  for (const Plan& p : r.plans)
    if (p.layout.dp == 64 && !p.layout.zero) {
      EXPECT_FALSE(p.fits);
    }
}

TEST(PlannerSearch, TimeModelFormulas) {
  const ModelSpec m{"t", 8, 512, 2048, 1024, 256, 32};
  const Cluster c = cluster_preset("a100-80g", 1);
  CostTarget t = target_preset("gpu-bf16");
  Layout l;
  l.micro_batch = 4, l.grad_accum = 8;
  const StepTime one = step_time(m, l, c, t);
  EXPECT_EQ(one.bubble, 0.0);
  EXPECT_EQ(one.tp_comm + one.pp_comm + one.dp_comm, 0.0);
  EXPECT_NEAR(one.total, one.compute + one.optimizer, 1e-12);
  // Pipeline: T = sum_s t_s + (M - 1) max_s t_s, bubble = T - M max_s t_s.
  l.pp = 4;
  const StepTime pp = step_time(m, l, c, t);
  EXPECT_GT(pp.bubble, 0.0);
  EXPECT_NEAR(pp.total, pp.compute + pp.pp_comm + pp.bubble + pp.optimizer, 1e-12);
  l.grad_accum = 32;
  const StepTime pp_more = step_time(m, l, c, t);
  EXPECT_LT(pp_more.bubble / pp_more.total, pp.bubble / pp.total);  // more micro-batches, smaller bubble share
  // Data parallelism: an all-reduce of P e_g in 25 MiB buckets, each paying 2 (n-1) latencies;
  // ZeRO-1 sends the same volume (reduce-scatter of the gradients + all-gather
  // of the parameters), paying (n-1) latencies each. rwkv-train's bf16 keeps
  // f32 gradients (e_g = 4) and gathers the bf16 weights (2), but the f32
  // masters (4) of one bucket per run of vectors: two a block, and ln_out.
  EXPECT_EQ(t.grad_bytes, 4.0);
  EXPECT_EQ(t.gather_bytes, 2.0);
  EXPECT_EQ(t.mixed_gather_bytes, 4.0);
  l = Layout{};
  l.dp = 8;
  const double P = static_cast<double>(total_parameters(m));
  const double bw = c.intra_bw * t.intra_efficiency, lat = t.latency_intra;
  const double buckets = std::ceil(P * 4 / static_cast<double>(t.bucket_bytes));
  const StepTime dp = step_time(m, l, c, t);
  EXPECT_NEAR(dp.dp_comm, 2.0 * 7 / 8 * P * 4 / bw + buckets * 14 * lat, 1e-9);
  l.zero = true;
  const StepTime zero = step_time(m, l, c, t);
  const double mixed = std::min(P, (2.0 * 8 + 1) * static_cast<double>(t.bucket_bytes) / 4);  // L = 8 blocks
  EXPECT_NEAR(zero.dp_comm, 7.0 / 8 * P * 4 / bw + 7.0 / 8 * (2 * P + 2 * mixed) / bw + 2 * 7 * lat, 1e-9);
  // Here every 25 MiB bucket holds vectors (min(P, ..) = P); with 1 MiB buckets 17 of them do.
  CostTarget small = t;
  small.bucket_bytes = 1 << 20;
  const double mixed_small = (2.0 * 8 + 1) * (1 << 20) / 4;
  ASSERT_LT(mixed_small, P);
  // Gathered after AdamW and waited for whole (DeepSpeed's ZeRO-2 step; --gather-overlap off):
  CostTarget exposed = small;
  exposed.gather_overlap = false;
  const StepTime gathered_after = step_time(m, l, c, exposed);
  EXPECT_NEAR(gathered_after.dp_comm,
              7.0 / 8 * P * 4 / bw + 7.0 / 8 * (2 * P + 2 * mixed_small) / bw + 2 * 7 * lat, 1e-9);
  // rwkv-train on GPUs: the f32 buckets are gathered first and waited for;
  // the bf16 rest runs into the next forward (a third of the micro-batch's
  // time, one stage) and shows only beyond it.
  ASSERT_TRUE(small.gather_overlap);
  const StepTime overlapped = step_time(m, l, c, small);
  const double forward = overlapped.compute / static_cast<double>(l.grad_accum) / 3;
  const double in_flight = 7.0 / 8 * (P - mixed_small) * 2 / bw + 7 * lat;
  EXPECT_NEAR(overlapped.dp_comm,
              7.0 / 8 * P * 4 / bw + 7.0 / 8 * 4 * mixed_small / bw + 2 * 7 * lat + std::max(0.0, in_flight - forward),
              1e-9);
  EXPECT_LT(overlapped.dp_comm, gathered_after.dp_comm);
  // A trainer with bf16 gradients and a bf16 gather of everything (--grad-bytes 2, DeepSpeed's bf16).
  CostTarget half = t;
  half.grad_bytes = 2;
  half.gather_bytes = 2;
  half.mixed_gather_bytes = 0;
  half.gather_overlap = false;  // as DeepSpeed's step: the gather after AdamW, waited for
  EXPECT_NEAR(step_time(m, l, c, half).dp_comm, 2.0 * 7 / 8 * P * 2 / bw + 2 * 7 * lat, 1e-9);
  // rwkv-train's bf16 wire (parallel.grad_reduce_dtype: bf16, --grad-reduce
  // bf16): f32 gradients, reduced in 2-byte elements; the gather unchanged.
  CostTarget wire = exposed;
  wire.reduce_bytes = 2;
  EXPECT_EQ(wire.wire_grad_bytes(), 2.0);
  EXPECT_NEAR(step_time(m, l, c, wire).dp_comm,
              7.0 / 8 * P * 2 / bw + 7.0 / 8 * (2 * P + 2 * mixed_small) / bw + 2 * 7 * lat, 1e-9);
  {
    Layout plain = l;
    plain.zero = false;
    const double plain_buckets = std::ceil(P * 4 / static_cast<double>(wire.bucket_bytes));  // buckets of f32 bytes
    EXPECT_NEAR(step_time(m, plain, c, wire).dp_comm, 2.0 * 7 / 8 * P * 2 / bw + plain_buckets * 14 * lat, 1e-9);
  }
  EXPECT_LT(zero.optimizer, dp.optimizer);  // AdamW on the shard only
  // Tensor parallelism adds collectives; across nodes the slower link.
  l = Layout{};
  l.tp = 8;
  EXPECT_GT(step_time(m, l, c, t).tp_comm, 0.0);
}

TEST(PlannerSearch, ModelThatFitsNowhereIsOneClearError) {
  Cluster c = cluster_preset("a100-80g", 1);
  c.gpus_per_node = 2, c.memory_bytes = 16.0 * (1 << 30);
  const std::string e = error_of([&] { search(pile_model("14B"), c, target_preset("gpu-bf16"), SearchOptions{}); });
  EXPECT_NE(e.find("14B does not fit on 2 devices of 16.00 GiB"), std::string::npos) << e;
  EXPECT_NE(e.find("---> HINT"), std::string::npos) << e;
}

TEST(PlannerSearch, ImpossibleLayoutsAndClusters) {
  const ModelSpec m = pile_model("169M");
  const CostTarget t = target_preset("gpu-bf16");
  Cluster c = cluster_preset("a100-80g", 1);
  SearchOptions o;
  o.tp = 5;  // 768 is not a multiple of 5, and 5 does not divide 8 ranks
  EXPECT_NE(error_of([&] { search(m, c, t, o); }).find("no layout of 8 ranks can run 169M"), std::string::npos);
  o = SearchOptions{};
  o.global_batch = 3;  // no dp of 8 ranks divides 3 sequences... except dp 1
  EXPECT_NO_THROW(search(m, c, t, o));
  c.gpus_per_node = 0;
  EXPECT_NE(error_of([&] { search(m, c, t, SearchOptions{}); }).find("--gpus-per-node must be at least 1, got 0"),
            std::string::npos);
  c = cluster_preset("a100-80g", 1);
  c.memory_bytes = -80.0 * (1 << 30);
  EXPECT_NE(error_of([&] { c.validate(); }).find("--gpu-memory must be positive, got -80 GiB"), std::string::npos);
  c = cluster_preset("a100-80g", 2);
  c.inter_bw = 0;
  EXPECT_NE(error_of([&] { c.validate(); }).find("--inter-bw must be positive for 2 nodes"), std::string::npos);
  c = cluster_preset("a100-80g", 1);
  o = SearchOptions{};
  o.world = 16;
  EXPECT_NE(error_of([&] { search(m, c, t, o); }).find("--world 16 exceeds the cluster's 8 devices"), std::string::npos);
}

TEST(PlannerUnits, BytesAndBits) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("600GB/s", "--intra-bw"), 600e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("200Gb/s", "--inter-bw"), 25e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("400 Gb/s", "--inter-bw"), 50e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("25", "--inter-bw"), 25e9);
  EXPECT_DOUBLE_EQ(parse_bytes("80GiB", "--gpu-memory"), 80.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(parse_bytes("80GB", "--gpu-memory"), 80e9);
  EXPECT_DOUBLE_EQ(parse_bytes("80", "--gpu-memory"), 80.0 * (1 << 30));
  EXPECT_NE(error_of([] { parse_bandwidth("600GB", "--intra-bw"); }).find("--intra-bw: unknown unit 'GB'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_bytes("lots", "--gpu-memory"); }).find("--gpu-memory expects a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_integer("2.5", "--nodes"); }).find("--nodes expects a whole number"), std::string::npos);
}

}  // namespace
}  // namespace rwkv::planner
