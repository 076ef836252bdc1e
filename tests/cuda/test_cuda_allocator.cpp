// The caching allocator on a GPU (core/cuda_allocator.h): tensor storage and
// kernel scratch go through it, a training step after the first makes no
// cudaMalloc/cudaFree, and running out of GPU memory is a clear rwkv::Error.
// The policy itself is tested on the CPU (tests/unit/test_caching_allocator.cpp).
#include <cuda_runtime_api.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/cuda_allocator.h"
#include "cuda_test_util.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

#define RWKV_REQUIRE_CACHING()                                                                            \
  do {                                                                                                    \
    if (!::rwkv::cuda_caching_allocator_enabled())                                                       \
      GTEST_SKIP() << "RWKV_CUDA_CACHING_ALLOCATOR disables caching: every allocation is a cudaMalloc";   \
  } while (0)

TEST(CudaAllocator, TensorStorageIsCachedAndReused) {
  RWKV_REQUIRE_GPU();
  RWKV_REQUIRE_CACHING();
  const CachingAllocatorStats before = cuda_memory_stats(0);
  {
    Tensor t = Tensor::empty({1000}, DType::F32, Device::cuda());  // 4000 B -> a 4096 B block
    const CachingAllocatorStats s = cuda_memory_stats(0);
    EXPECT_EQ(s.bytes_in_use, before.bytes_in_use + 4096);
    EXPECT_EQ(s.bytes_requested, before.bytes_requested + 4000);
    EXPECT_EQ(s.allocations, before.allocations + 1);
  }
  const CachingAllocatorStats freed = cuda_memory_stats(0);
  EXPECT_EQ(freed.bytes_in_use, before.bytes_in_use);
  EXPECT_EQ(freed.frees, before.frees + 1);
  Tensor again = Tensor::empty({1000}, DType::F32, Device::cuda());  // from the cache
  const CachingAllocatorStats s = cuda_memory_stats(0);
  EXPECT_EQ(s.backing_allocs, freed.backing_allocs);
  EXPECT_EQ(s.cache_hits, freed.cache_hits + 1);
  // The memory works: a round trip through the cached block.
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  again.copy_from(Tensor::from_vector<float>(values, {1000}));
  EXPECT_EQ(again.to_vector<float>(), values);
}

// One training step (zero grads, forward/backward, AdamW), as rwkv-train runs it.
double train_step(Rwkv4Model& model, AdamWOptimizer& opt, const Tensor& tokens) {
  model.grads().zero_all();
  const double loss = model.forward_backward(tokens, tokens, 1.0f / static_cast<float>(tokens.numel()), 1.0f);
  opt.step(model.params(), model.grads(), 1e-3);
  return loss;
}

class CudaAllocatorSteps : public ::testing::TestWithParam<bool> {};

TEST_P(CudaAllocatorSteps, SecondIdenticalStepMakesNoBackingAllocations) {
  RWKV_REQUIRE_GPU();
  RWKV_REQUIRE_CACHING();
  const bool recompute = GetParam();
  const Rwkv4Shape shape{2, 64, 97, 256};
  Rwkv4Model model(shape, DType::F32, recompute, Device::cuda());
  init_rwkv4_reference(model.params(), shape, 3, 1e-2);
  AdamWOptimizer opt(model.params(), AdamWSettings{});
  std::vector<int32_t> ids;
  for (int i = 0; i < 2 * 33; ++i) ids.push_back((i * 31 + 7) % 97);
  const Tensor tokens = Tensor::from_vector<int32_t>(ids, {2, 33});

  train_step(model, opt, tokens);  // the first step allocates activations, optimizer state, scratch
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const CachingAllocatorStats first = cuda_memory_stats(0);
  EXPECT_GT(first.backing_allocs, 0u);

  for (int step = 2; step <= 3; ++step) {
    const CachingAllocatorStats before = cuda_memory_stats(0);
    const double loss = train_step(model, opt, tokens);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_TRUE(std::isfinite(loss));
    const CachingAllocatorStats after = cuda_memory_stats(0);
    SCOPED_TRACE("step " + std::to_string(step));
    EXPECT_EQ(after.backing_allocs, before.backing_allocs) << "cudaMalloc inside a training step";
    EXPECT_EQ(after.backing_frees, before.backing_frees) << "cudaFree inside a training step";
    EXPECT_EQ(after.cache_misses, before.cache_misses);
    EXPECT_GT(after.allocations, before.allocations) << "the step's scratch should come from the cache";
    EXPECT_EQ(after.cache_hits - before.cache_hits, after.allocations - before.allocations);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use) << "a step leaks or keeps GPU memory";
    EXPECT_EQ(after.bytes_reserved, first.bytes_reserved);
  }
}

INSTANTIATE_TEST_SUITE_P(Recompute, CudaAllocatorSteps, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("recompute") : std::string("stored");
                         });

TEST(CudaAllocator, OutOfMemoryIsAClearErrorAndTheGpuStaysUsable) {
  RWKV_REQUIRE_GPU();
  const CachingAllocatorStats before = cuda_memory_stats(0);
  // 4 PiB: more than any GPU has.
  test::expect_error([] { Tensor::empty({int64_t{1} << 50}, DType::F32, Device::cuda()); },
                     {"out of memory on cuda:0", "allocating 4503599627370496 bytes", "in use", "cached", "retrying",
                      "micro_batch", "recompute"});
  const CachingAllocatorStats s = cuda_memory_stats(0);
  EXPECT_EQ(s.ooms, before.ooms + 1);
  EXPECT_EQ(s.oom_retries, before.oom_retries + 1);
  // No sticky CUDA error is left behind: the next allocation and copy work.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  Tensor t = Tensor::zeros({256}, DType::F32, Device::cuda());
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(256, 0.0f));
}

TEST(CudaAllocator, EmptyCacheGivesFreeSegmentsBack) {
  RWKV_REQUIRE_GPU();
  RWKV_REQUIRE_CACHING();
  { Tensor big = Tensor::empty({int64_t{64} << 20}, DType::F32, Device::cuda()); }  // a 256 MiB segment, now cached
  const CachingAllocatorStats cached = cuda_memory_stats(0);
  EXPECT_GE(cached.bytes_cached, size_t{256} << 20);
  const size_t released = cuda_empty_cache(0);
  EXPECT_GE(released, size_t{256} << 20);
  const CachingAllocatorStats s = cuda_memory_stats(0);
  EXPECT_EQ(s.bytes_reserved, cached.bytes_reserved - released);
  EXPECT_EQ(s.bytes_in_use, cached.bytes_in_use);
}

}  // namespace
}  // namespace rwkv
