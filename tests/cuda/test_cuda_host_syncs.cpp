// "No host synchronisation inside a step except where needed for logging"
// (the CUDA issue), counted: under the CUDA emulator every operation after
// which the host waits for the GPU is counted (cuda_emulator/inspect.h), and
// the training loop's steps are compared. Two runs that differ only in their
// number of steps differ in synchronisations by exactly that many steps'
// worth, so (S(6) - S(3)) / 3 is one step's, start-up and the final
// checkpoint excluded. A synchronisation that finds device work in flight is
// a stall (the GPU's queue runs dry while the host catches up); the others
// cost a copy's latency. On a real GPU there is nothing to count: it skips.
#include <filesystem>

#include "cuda_test_util.h"
#include "cuda_training_run.h"

#if defined(RWKV_CUDA_EMULATOR)
#include "cuda_emulator/inspect.h"
#endif

namespace rwkv {
namespace {

namespace fs = std::filesystem;

struct Counts {
  uint64_t syncs, stalls, launches;
};

TEST(CudaHostSyncs, ATrainingStepWaitsForTheGpuOnce) {
#if !defined(RWKV_CUDA_EMULATOR)
  GTEST_SKIP() << "counts synchronisations through the CUDA emulator (-DRWKV_CUDA=EMULATE)";
#else
  RWKV_REQUIRE_GPU();
  const fs::path dir = fs::temp_directory_path() / ("rwkv_cuda_host_syncs_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string prefix = test::write_pattern_corpus(dir);
  auto run = [&](int steps, const char* precision) {
    test::TinyRun r;
    r.precision = precision;
    r.steps = steps;
    r.log_interval = 1;
    r.checkpoint_dir = (dir / ("ckpt_" + std::to_string(steps) + precision)).string();
    r.checkpoint_interval = 0;
    const Counts before{cuda_emulator::host_synchronizations(), cuda_emulator::host_stalls(),
                        cuda_emulator::kernel_launches()};
    test::run_tiny_training(prefix, r);
    return Counts{cuda_emulator::host_synchronizations() - before.syncs, cuda_emulator::host_stalls() - before.stalls,
                  cuda_emulator::kernel_launches() - before.launches};
  };
  for (const char* precision : {"fp32", "bf16"}) {
    SCOPED_TRACE(precision);
    const Counts three = run(3, precision), six = run(6, precision);
    ASSERT_EQ((six.syncs - three.syncs) % 3, 0u) << "steps differ in their synchronisations";
    const uint64_t per_step = (six.syncs - three.syncs) / 3, stalls_per_step = (six.stalls - three.stalls) / 3;
    const uint64_t launches_per_step = (six.launches - three.launches) / 3;
    std::printf("%s: per step %llu host synchronisations, %llu of them with work in flight, %llu kernel launches\n",
                precision, static_cast<unsigned long long>(per_step), static_cast<unsigned long long>(stalls_per_step),
                static_cast<unsigned long long>(launches_per_step));
    // Three: the gradient norm (the clip needs it before the update), the
    // loss read right after it, and the next step's micro-batches (tokens,
    // embedding rows, targets) in one copy to the device, packed while the
    // queue is empty. Only the gradient norm finds work in flight.
    EXPECT_EQ(per_step, 3u);
    EXPECT_EQ(stalls_per_step, 1u);
    EXPECT_GT(launches_per_step, 20u);  // the count is of real work, not of nothing
  }
  fs::remove_all(dir);
#endif
}

}  // namespace
}  // namespace rwkv
