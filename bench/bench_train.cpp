// Training-step benchmark: tokens/s and MFU (against this machine's measured
// sgemm peak) for the tiny and 169M-shaped RWKV-4, each op's share of a step,
// and peak resident memory against the analytic parameters + gradients +
// optimizer + activations. Prints readable lines and one JSON line.
//
//   rwkv-bench-train [--threads N] [--steps N] [--shape tiny|169m|all] [--ctx T] [--batch B] [--recompute]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/memory_stats.h"
#include "core/profiler.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/gemm_peak.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"

namespace {

using namespace rwkv;

struct Case {
  std::string name;
  Rwkv4Shape shape;
  int64_t batch, ctx;
};

double flops_per_token(const Rwkv4Shape& s) {
  const double C = static_cast<double>(s.n_embd), F = static_cast<double>(s.dim_ffn);
  return 6.0 * (static_cast<double>(s.n_layer) * (5.0 * C * C + 2.0 * C * F) + static_cast<double>(s.vocab_size) * C);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = hardware_threads(), steps = 3;
  std::string which = "all";
  int64_t ctx_override = 0, batch_override = 0;
  bool recompute = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "rwkv-bench-train: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") threads = std::stoi(next());
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--shape") which = next();
    else if (a == "--ctx") ctx_override = std::stoll(next());
    else if (a == "--batch") batch_override = std::stoll(next());
    else if (a == "--recompute") recompute = true;
    else {
      std::fprintf(stderr, "usage: rwkv-bench-train [--threads N] [--steps N] [--shape tiny|169m|all] [--ctx T] [--batch B] [--recompute]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  const double peak = measure_gemm_peak_gflops(Device::cpu(), 1.0);
  std::printf("rwkv-bench-train: %d threads, measured sgemm peak %.1f GFLOP/s%s\n", threads, peak, recompute ? ", recompute" : "");
  std::vector<Case> cases;
  if (which == "tiny" || which == "all") cases.push_back({"tiny", {4, 128, 257, 512}, 8, 128});
  if (which == "169m" || which == "all") cases.push_back({"169m", {12, 768, 50277, 3072}, 1, 1024});
  std::string json = "{\"threads\": " + std::to_string(threads) + ", \"sgemm_peak_gflops\": " + std::to_string(peak) + ", \"cases\": [";
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    Case c = cases[ci];
    if (ctx_override) c.ctx = ctx_override;
    if (batch_override) c.batch = batch_override;
    Rwkv4Model model(c.shape, DType::F32, recompute);
    init_rwkv4_reference(model.params(), c.shape, 1, 1e-4);
    AdamWOptimizer opt(model.params(), AdamWSettings{});
    std::vector<int32_t> ids(static_cast<size_t>(c.batch * c.ctx));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % static_cast<size_t>(c.shape.vocab_size));
    Tensor tokens = Tensor::from_vector<int32_t>(ids, {c.batch, c.ctx});
    const float scale = 1.0f / static_cast<float>(c.batch * c.ctx);
    auto step = [&] {
      model.grads().zero_all();
      model.forward_backward(tokens, tokens, scale, 1.0f);
      opt.step(model.params(), model.grads(), 1e-4);
    };
    step();  // warm-up: allocation, thread pools
    profile_reset();
    set_profiling(true);
    double best = 1e30, total = 0;
    for (int s = 0; s < steps; ++s) {
      Timer t;
      step();
      best = std::min(best, t.seconds());
      total += t.seconds();
    }
    set_profiling(false);
    const double tokens_per_step = static_cast<double>(c.batch * c.ctx);
    const double tok_s = tokens_per_step / best;
    const double mfu = tok_s * flops_per_token(c.shape) / (peak * 1e9);
    const double param_bytes = static_cast<double>(model.params().numel()) * 4.0;
    const double analytic = 4.0 * param_bytes + static_cast<double>(model.activation_bytes(c.batch, c.ctx));
    const HostMemory mem = host_memory();
    std::printf("train  %-5s L%lld C%lld V%lld  B=%lld T=%lld: %8.0f tok/s  MFU %5.1f%%  step %.3f s\n", c.name.c_str(),
                (long long)c.shape.n_layer, (long long)c.shape.n_embd, (long long)c.shape.vocab_size, (long long)c.batch,
                (long long)c.ctx, tok_s, 100 * mfu, best);
    std::printf("memory %-5s peak RSS %.1f MiB; analytic %.1f MiB (params+grads+adam %.1f, activations %.1f); ratio %.2f\n",
                c.name.c_str(), mem.peak_resident_bytes / 1048576.0, analytic / 1048576.0, 4 * param_bytes / 1048576.0,
                (analytic - 4 * param_bytes) / 1048576.0, mem.peak_resident_bytes / analytic);
    std::map<std::string, double> totals = profile_totals();
    std::vector<std::pair<double, std::string>> shares;
    double op_sum = 0;
    for (const auto& [name, sec] : totals) {
      shares.emplace_back(sec, name);
      op_sum += sec;
    }
    std::sort(shares.rbegin(), shares.rend());
    std::string share_json;
    for (const auto& [sec, name] : shares) {
      std::printf("  share %-32s %5.1f%%\n", name.c_str(), 100 * sec / total);
      share_json += std::string(share_json.empty() ? "" : ", ") + "\"" + name + "\": " + std::to_string(sec / total);
    }
    std::printf("  share %-32s %5.1f%%\n", "(outside ops)", 100 * (total - op_sum) / total);
    json += std::string(ci ? ", " : "") + "{\"name\": \"" + c.name + "\", \"batch\": " + std::to_string(c.batch) +
            ", \"ctx\": " + std::to_string(c.ctx) + ", \"tokens_per_s\": " + std::to_string(tok_s) +
            ", \"mfu\": " + std::to_string(mfu) + ", \"peak_rss_bytes\": " + std::to_string(mem.peak_resident_bytes) +
            ", \"analytic_bytes\": " + std::to_string(analytic) + ", \"op_share\": {" + share_json + "}}";
  }
  json += "]}";
  std::printf("JSON %s\n", json.c_str());
  return 0;
}
