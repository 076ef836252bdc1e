// The planner's GPU memory model (planner/memory_model.h, target gpu-bf16)
// against what rwkv-train's GPU backend allocates: the caching allocator's
// peak bytes in use during a bf16 run. The allocations are the GPU path's
// own (the CUDA emulator runs that same code), so this checks the model line
// by line that the 14B plan rests on; the CUDA context, cuBLAS workspaces and
// NCCL buffers (the target's runtime_overhead) are outside the allocator and
// left out of both sides. Target (the planner issue): within 15%.
#include <filesystem>
#include <sstream>

#include "core/cuda_allocator.h"
#include "cuda_test_util.h"
#include "cuda_training_run.h"
#include "planner/cost_target.h"
#include "planner/memory_model.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

TEST(CudaPlannerMemory, Bf16PeakWithinFifteenPercentOfThePlan) {
  RWKV_REQUIRE_GPU();
  const fs::path dir = fs::temp_directory_path() / ("rwkv_cuda_planner_memory_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string prefix = test::write_pattern_corpus(dir);
  const planner::ModelSpec model{"measured", 2, 256, 1024, 2048, 64, 0};
  for (const bool recompute : {false, true}) {
    SCOPED_TRACE(recompute ? "recompute" : "activations kept");
    planner::Layout layout;
    layout.micro_batch = 4;
    layout.grad_accum = 2;
    layout.recompute = recompute;
    std::ostringstream yaml;
    yaml << "device: cuda\n"
         << "model: {n_layer: " << model.n_layer << ", n_embd: " << model.n_embd << ", dim_ffn: " << model.dim_ffn
         << ", vocab_size: " << model.vocab_size << ", ctx_len: " << model.ctx_len << "}\n"
         << "data: {train: [" << prefix << "], tokenizer: bytes}\n"
         << "train: {micro_batch: " << layout.micro_batch << ", grad_accum: " << layout.grad_accum
         << ", steps: 2, log_interval: 100, peak_gflops: 1, threads: 1, precision: bf16, recompute: "
         << (recompute ? "true" : "false") << "}\n"
         << "checkpoint: {dir: " << (dir / (recompute ? "ckpt_r" : "ckpt")).string()
         << ", resume: never, interval: 0, keep_last: 0}\n";
    cuda_empty_cache(0);
    cuda_reset_peak_memory_stats(0);
    trainer::run_training(trainer::load_config_text(yaml.str(), "test"), trainer::TrainOptions{});
    const double measured = static_cast<double>(cuda_memory_stats(0).peak_bytes_in_use);
    planner::CostTarget target = planner::target_preset("gpu-bf16");
    target.runtime_overhead = 0;  // outside the caching allocator (see the top)
    const planner::MemoryBreakdown plan = planner::stage_memory(model, layout, target, 0);
    std::printf("bf16%s: planned %.2f MiB (params %.2f, grads %.2f, master %.2f, adam %.2f, activations %.2f, "
                "comm %.2f), allocator peak %.2f MiB (%+.1f%%)\n",
                recompute ? " recompute" : "", plan.total / 1048576, plan.params / 1048576, plan.grads / 1048576,
                plan.master / 1048576, plan.optimizer / 1048576, plan.activations / 1048576,
                plan.comm_buffers / 1048576, measured / 1048576, 100 * (plan.total / measured - 1));
    EXPECT_NEAR(plan.total / measured, 1.0, 0.15);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
