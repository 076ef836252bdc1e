// The memory model against the trainer's own accounting
// (Rwkv4Model::activation_bytes) and line by line on a small case.
#include <gtest/gtest.h>

#include "planner/memory_model.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::planner {
namespace {

// activation_set_bytes counts exactly the buffers of Rwkv4Model::slot();
// activation_bytes (the trainer's analytic figure) leaves out the three i32
// token rows (12 N bytes) and counts one statistics row more (4 N): the two
// differ by exactly 8 N bytes on a whole model in f32.
TEST(PlannerMemory, ActivationsMatchTheTrainersAccounting) {
  for (const auto& [L, C, V] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{2, 32, 257}, {3, 64, 1000}}) {
    const ModelSpec m{"t", L, C, 4 * C, V, 16, 1};
    for (bool recompute : {false, true}) {
      Rwkv4Model model(m.shape(), DType::F32, recompute);
      for (const auto& [B, T] : std::vector<std::pair<int64_t, int64_t>>{{1, 16}, {4, 32}}) {
        const double mine = activation_set_bytes(m, Rwkv4Partition::whole(m.shape()), B, T, recompute, 4.0);
        EXPECT_EQ(static_cast<int64_t>(mine), model.activation_bytes(B, T) + 8 * B * T)
            << "L" << L << " C" << C << " B" << B << " T" << T << " recompute " << recompute;
      }
    }
  }
}

// A hand-checked rank: L2 C32 F128 V100, tp 1, dp 2 with ZeRO-1, B 2 x T 8.
TEST(PlannerMemory, EveryLineOfASmallCase) {
  const ModelSpec m{"t", 2, 32, 128, 100, 8, 4};
  Layout l;
  l.dp = 2, l.micro_batch = 2, l.grad_accum = 1, l.zero = true;
  CostTarget t = target_preset("cpu-fp32");
  t.runtime_overhead = 1000;
  const MemoryBreakdown b = stage_memory(m, l, t, 0);
  // 2VC + L(13C^2 + 11C) + 4C = 6400 + 2 (13312 + 352) + 128 = 33856
  ASSERT_EQ(b.parameters, 33856);
  EXPECT_DOUBLE_EQ(b.params, 33856.0 * 4);
  EXPECT_DOUBLE_EQ(b.grads, 33856.0 * 4);
  EXPECT_DOUBLE_EQ(b.master, 0.0);
  // ZeRO-1 shard S = ceil(33856 / (2 x 64)) x 64 = 16960 elements of the f32
  // masters, m and v (the masters too on an fp32 target: the shard's own copy).
  EXPECT_DOUBLE_EQ(b.optimizer_zero1, 16960.0 * 12);
  EXPECT_DOUBLE_EQ(b.optimizer_replicated, 33856.0 * 8);
  EXPECT_DOUBLE_EQ(b.optimizer, 16960.0 * 12);
  // dp buffers: 2 min(25 MiB, 2 S x 4) + the gradient shard S x 4
  EXPECT_DOUBLE_EQ(b.comm_buffers, 2 * 2 * 16960.0 * 4 + 16960.0 * 4);
  // A bf16 wire (parallel.grad_reduce_dtype: bf16) adds its ring: 4 buckets of 2-byte elements.
  CostTarget wire = t;
  wire.reduce_bytes = 2;
  EXPECT_DOUBLE_EQ(stage_memory(m, l, wire, 0).comm_buffers, b.comm_buffers + 4 * 2 * 16960.0 * 2);
  EXPECT_EQ(b.in_flight, 1);
  EXPECT_DOUBLE_EQ(b.activations, activation_set_bytes(m, l.part(m, 0), 2, 8, false, 4.0));
  EXPECT_DOUBLE_EQ(b.steady, b.params + b.grads + b.optimizer + b.activations + b.comm_buffers + 1000);
  // Start-up: params + grads + the larger orthogonal init in double, 28 max(V, F) C (ffn.key's here: F 128 > V 100)
  EXPECT_DOUBLE_EQ(b.init_peak, 2 * 33856.0 * 4 + 1000 + 16.0 * 128 * 32);
  EXPECT_DOUBLE_EQ(b.total, std::max(b.steady, b.init_peak));
}

// Pipeline stages hold GPipe's M or 1F1B's pp - stage micro-batches; recompute
// keeps one block's set plus every block's input.
TEST(PlannerMemory, InFlightMicroBatchesAndRecompute) {
  const ModelSpec m{"t", 8, 64, 256, 500, 32, 16};
  Layout l;
  l.pp = 4, l.grad_accum = 8;
  EXPECT_EQ(l.in_flight(0), 4);
  EXPECT_EQ(l.in_flight(3), 1);
  l.schedule = trainer::PipelineSchedule::GPipe;
  EXPECT_EQ(l.in_flight(3), 8);
  l.schedule = trainer::PipelineSchedule::OneFOneB;
  const CostTarget t = target_preset("gpu-bf16");
  const MemoryBreakdown first = stage_memory(m, l, t, 0);
  EXPECT_EQ(first.in_flight, 4);
  EXPECT_LT(first.activations_recompute, first.activations_full);
  const double N = 32, C = 64, e = 2;
  const double per_set_saving = (first.activations_full - first.activations_recompute) / 4;
  // 2 blocks per stage: recompute drops one block's set but keeps its input: (9C + 7C + 2F + 4 - C) N e
  EXPECT_DOUBLE_EQ(per_set_saving, (16 * C + 2 * 256 + 4 - C) * N * e);
}

}  // namespace
}  // namespace rwkv::planner
