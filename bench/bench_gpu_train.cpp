// GPU training-step benchmark: tokens/s and MFU of whole RWKV-4 training
// steps (forward, backward, AdamW) on one GPU, against this GPU's measured
// bf16 GEMM peak (and a stated peak, e.g. the datasheet's, with
// --peak-tflops), in bf16 mixed precision and in fp32; GPU memory from the
// caching allocator next to the precision plan's figure. Readable lines and
// one JSON line. Where there is no GPU it says so and measures nothing.
//
//   rwkv-bench-gpu [--shape 169m|430m|1b5|all|tiny] [--batch B] [--ctx T] [--steps N]
//                  [--precision bf16|fp32|both] [--recompute] [--peak-tflops F] [--gemm-size N]
// (tiny, L2 C64, and a small --gemm-size are for smoke runs: the CUDA
// emulator runs the whole benchmark in CI that way, numbers meaningless.)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/cuda_allocator.h"
#include "core/device.h"
#include "core/timer.h"
#include "kernels/gemm_peak.h"
#include "kernels/reduce.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/train_loop.h"

namespace {

using namespace rwkv;

struct Case {
  std::string name;
  Rwkv4Shape shape;
};

// rwkv-train's MFU numerator: 6 x matmul parameters per token.
double flops_per_token(const Rwkv4Shape& s) {
  return trainer::training_flops_per_token(trainer::ModelConfig{s.n_layer, s.n_embd, s.vocab_size, 0, s.dim_ffn});
}

// Waits for the GPU: sum_of_squares copies its result to the host.
void sync_gpu(const Tensor& any_gpu_tensor) { (void)sum_of_squares(any_gpu_tensor.slice_rows(0, 1)); }

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "rwkv-bench-gpu: %s\nusage: rwkv-bench-gpu [--shape 169m|430m|1b5|all|tiny] [--batch B] [--ctx T] "
               "[--steps N] [--precision bf16|fp32|both] [--recompute] [--peak-tflops F] [--gemm-size N]\n", why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "169m", precision = "both";
  int64_t batch = 8, ctx = 1024;
  int steps = 5;
  bool recompute = false;
  double stated_tflops = 0;
  int64_t gemm_size = 8192;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    // A number, whole and positive, or the usage message (not an uncaught std::stoll).
    auto number = [&](const std::string& text) -> double {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(v > 0)) usage((a + " expects a positive number, got '" + text + "'").c_str());
      return v;
    };
    if (a == "--shape") which = next();
    else if (a == "--batch") batch = static_cast<int64_t>(number(next()));
    else if (a == "--ctx") ctx = static_cast<int64_t>(number(next()));
    else if (a == "--steps") steps = static_cast<int>(number(next()));
    else if (a == "--precision") precision = next();
    else if (a == "--recompute") recompute = true;
    else if (a == "--peak-tflops") stated_tflops = number(next());
    else if (a == "--gemm-size") gemm_size = static_cast<int64_t>(number(next()));
    else usage(("unknown argument " + a).c_str());
  }
  if (precision != "bf16" && precision != "fp32" && precision != "both") usage("--precision is bf16, fp32 or both");
  if (!cuda_available()) {
    std::printf("rwkv-bench-gpu: needs a CUDA GPU (%s); nothing measured\n", cuda_unavailable_reason().c_str());
    std::printf("JSON {\"gpu\": false, \"reason\": \"no CUDA GPU\"}\n");
    return 0;
  }
  const Device gpu = Device::cuda(0);
  const double peak_gflops = measure_gemm_peak_gflops(gpu, 1.0, gemm_size);  // bf16 on CUDA (kernels/gemm_peak.h)
  std::printf("rwkv-bench-gpu: cuda:0, measured bf16 GEMM peak %.1f TFLOP/s%s\n", peak_gflops / 1e3,
              stated_tflops > 0 ? (", stated peak " + std::to_string(stated_tflops) + " TFLOP/s").c_str() : "");
  std::vector<Case> cases;
  if (which == "169m" || which == "all") cases.push_back({"169m", {12, 768, 50277, 3072}});
  if (which == "430m" || which == "all") cases.push_back({"430m", {24, 1024, 50277, 4096}});
  if (which == "1b5" || which == "all") cases.push_back({"1b5", {24, 2048, 50277, 8192}});
  if (which == "tiny") cases.push_back({"tiny", {2, 64, 257, 256}});
  if (cases.empty()) usage("--shape is 169m, 430m, 1b5, all or tiny");
  std::vector<Precision> precisions;
  if (precision != "fp32") precisions.push_back(Precision::BF16);
  if (precision != "bf16") precisions.push_back(Precision::FP32);

  std::string json = "{\"gpu\": true, \"bf16_peak_gflops\": " + std::to_string(peak_gflops) + ", \"runs\": [";
  bool first_run = true;
  for (const Case& c : cases) {
    for (Precision p : precisions) {
      cuda_empty_cache(0);
      cuda_reset_peak_memory_stats(0);
      Rwkv4Model model(c.shape, DType::F32, recompute, gpu, Rwkv4Partition{}, nullptr, p);
      init_rwkv4_reference(model.params(), c.shape, 1, 1e-4);
      model.refresh_compute_copies();
      AdamWOptimizer opt(model.params(), AdamWSettings{});
      opt.set_param_copies(model.compute_copies());
      std::vector<int32_t> ids(static_cast<size_t>(batch * ctx));
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % static_cast<size_t>(c.shape.vocab_size));
      const Tensor tokens = Tensor::from_vector<int32_t>(ids, {batch, ctx});
      const float scale = 1.0f / static_cast<float>(batch * ctx);
      const Tensor& probe = model.params().entries().front().value;
      auto step = [&] {
        model.grads().zero_all();
        model.forward_backward(tokens, tokens, scale, 1.0f);
        opt.step(model.params(), model.grads(), 1e-4);
      };
      step();  // warm-up: the caching allocator fills, cuBLAS picks its algorithms
      sync_gpu(probe);
      double best = 1e30;
      for (int s = 0; s < steps; ++s) {
        Timer t;
        step();
        sync_gpu(probe);
        best = std::min(best, t.seconds());
      }
      const double tok_s = static_cast<double>(batch * ctx) / best;
      const double achieved = tok_s * flops_per_token(c.shape);
      const double mfu = achieved / (peak_gflops * 1e9);
      const double mfu_stated = stated_tflops > 0 ? achieved / (stated_tflops * 1e12) : 0.0;
      const CachingAllocatorStats mem = cuda_memory_stats(0);
      std::printf("gpu %-5s %s B=%lld T=%lld%s: %9.0f tok/s  step %.1f ms  MFU %5.1f%% of measured%s  peak GPU memory %.2f GiB "
                  "(reserved %.2f GiB)\n",
                  c.name.c_str(), precision_name(p), static_cast<long long>(batch), static_cast<long long>(ctx),
                  recompute ? " recompute" : "", tok_s, best * 1e3, 100 * mfu,
                  stated_tflops > 0 ? (", " + std::to_string(100 * mfu_stated).substr(0, 5) + "% of stated").c_str() : "",
                  mem.peak_bytes_in_use / 1073741824.0, mem.peak_bytes_reserved / 1073741824.0);
      json += std::string(first_run ? "" : ", ") + "{\"shape\": \"" + c.name + "\", \"precision\": \"" +
              precision_name(p) + "\", \"batch\": " + std::to_string(batch) + ", \"ctx\": " + std::to_string(ctx) +
              ", \"tokens_per_s\": " + std::to_string(tok_s) + ", \"mfu_measured_peak\": " + std::to_string(mfu) +
              ", \"mfu_stated_peak\": " + std::to_string(mfu_stated) +
              ", \"peak_gpu_bytes\": " + std::to_string(mem.peak_bytes_in_use) + "}";
      first_run = false;
    }
  }
  json += "]}";
  std::printf("JSON %s\n", json.c_str());
  return 0;
}
