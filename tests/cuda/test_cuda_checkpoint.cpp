// Checkpoints with the GPU backend (the same files, formats and resume as on
// the CPU; save copies device -> host, load host -> device):
//   - a GPU run resumed from its own checkpoint continues bit for bit like the
//     uninterrupted GPU run (losses and final weights), in fp32 and in bf16;
//   - a CPU checkpoint resumes on the GPU, and a GPU checkpoint on the CPU,
//     each continuing within the f32 tolerance of the run it left (the
//     devices sum in different orders, so not bit for bit).
// Without a GPU every test skips (the emulated build runs them on the CPU).
#include <cmath>
#include <filesystem>

#include "checkpoint/safetensors.h"
#include "cuda_test_util.h"
#include "cuda_training_run.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

// Two devices' runs of the same steps: the same maths, different summation
// orders; after two more AdamW steps from the same state the losses agree to
// about 1e-5 relative (docs/testing.md), 1e-4 leaves margin.
constexpr double kCrossDeviceLossRtol = 1e-4;

class CudaCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rwkv_cuda_checkpoint_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    prefix_ = test::write_pattern_corpus(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // 4 steps, a checkpoint every 2 in `ckpt`; `resume` as the config takes it.
  trainer::TrainSummary run(const char* device, const char* precision, const std::string& ckpt,
                            const std::string& resume) {
    test::TinyRun r;
    r.device = device;
    r.precision = precision;
    r.checkpoint_dir = ckpt;
    r.resume = resume;
    return test::run_tiny_training(prefix_, r);
  }

  std::string ckpt(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  std::string prefix_;
};

void expect_same_weights(const std::string& a, const std::string& b) {
  const checkpoint::SafetensorsFile fa(a), fb(b);
  ASSERT_EQ(fa.entries().size(), fb.entries().size());
  for (const auto& e : fa.entries()) test::expect_bitwise_equal(fa.read(e.name), fb.read(e.name), e.name);
}

TEST_F(CudaCheckpoint, GpuResumeContinuesBitForBit) {
  RWKV_REQUIRE_GPU();
  for (const char* precision : {"fp32", "bf16"}) {
    SCOPED_TRACE(precision);
    const std::string whole = ckpt(std::string("whole_") + precision);
    const trainer::TrainSummary uninterrupted = run("cuda", precision, whole, "never");
    ASSERT_EQ(uninterrupted.losses.size(), 4u);
    // Resume from the step-2 checkpoint, in a directory of its own.
    const std::string part = ckpt(std::string("part_") + precision);
    fs::create_directories(part);
    fs::copy(fs::path(whole) / "step_00000002", fs::path(part) / "step_00000002", fs::copy_options::recursive);
    const trainer::TrainSummary resumed = run("cuda", precision, part, "auto");
    EXPECT_EQ(resumed.resumed_step, 2);
    ASSERT_EQ(resumed.losses.size(), 2u);
    EXPECT_EQ(resumed.losses[0], uninterrupted.losses[2]);
    EXPECT_EQ(resumed.losses[1], uninterrupted.losses[3]);
    expect_same_weights(resumed.weights_path, uninterrupted.weights_path);
  }
}

TEST_F(CudaCheckpoint, CheckpointsMoveBetweenCpuAndGpu) {
  RWKV_REQUIRE_GPU();
  const trainer::TrainSummary cpu = run("cpu", "fp32", ckpt("cpu"), "never");
  const trainer::TrainSummary gpu = run("cuda", "fp32", ckpt("gpu"), "never");
  ASSERT_EQ(cpu.losses.size(), 4u);
  ASSERT_EQ(gpu.losses.size(), 4u);
  // CPU step 2 -> GPU, GPU step 2 -> CPU.
  const trainer::TrainSummary on_gpu = run("cuda", "fp32", ckpt("cpu_to_gpu"), ckpt("cpu") + "/step_00000002");
  const trainer::TrainSummary on_cpu = run("cpu", "fp32", ckpt("gpu_to_cpu"), ckpt("gpu") + "/step_00000002");
  ASSERT_EQ(on_gpu.losses.size(), 2u);
  ASSERT_EQ(on_cpu.losses.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(on_gpu.losses[i], cpu.losses[i + 2], kCrossDeviceLossRtol * cpu.losses[i + 2]) << "step " << i + 3;
    EXPECT_NEAR(on_cpu.losses[i], gpu.losses[i + 2], kCrossDeviceLossRtol * gpu.losses[i + 2]) << "step " << i + 3;
  }
}

}  // namespace
}  // namespace rwkv
