// Kernel benchmark: this machine's measured sgemm peak (OpenBLAS, all cores)
// and WKV-4 forward/backward throughput, against a straightforward scalar
// loop (std::exp, one channel at a time, one thread) as the baseline.
// Prints one readable line per measurement and a JSON summary at the end.
//
//   rwkv-bench-kernels [--threads N] [--quick]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/threads.h"
#include "core/timer.h"
#include "kernels/dropout.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"
#include "kernels/wkv4.h"

namespace {

using namespace rwkv;

Tensor filled(const Shape& shape, float lo, float hi, uint32_t seed) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  uint32_t s = seed;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;  // LCG: fast, and good enough for benchmark inputs
    p[i] = lo + (hi - lo) * static_cast<float>(s >> 8) / static_cast<float>(1u << 24);
  }
  return t;
}

// Runs fn repeatedly for at least min_seconds (after one warm-up call) and
// returns the best time of one call: the least disturbed by other work.
template <typename F>
double best_seconds(F&& fn, double min_seconds) {
  fn();
  double best = 1e30, total = 0.0;
  int runs = 0;
  while (total < min_seconds || runs < 3) {
    Timer timer;
    fn();
    double s = timer.seconds();
    best = std::min(best, s);
    total += s;
    ++runs;
  }
  return best;
}

// The straightforward scalar WKV-4 forward: the baseline the vectorised kernel is measured against.
void scalar_wkv_forward(const float* decay, const float* first, const float* k, const float* v, float* y, int64_t B,
                        int64_t T, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      float w = -std::exp(decay[c]), u = first[c], aa = 0, bb = 0, pp = -1e38f;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * T + t) * C + c;
        float ww = u + k[i], p = std::max(pp, ww), e1 = std::exp(pp - p), e2 = std::exp(ww - p);
        y[i] = (e1 * aa + e2 * v[i]) / (e1 * bb + e2);
        ww = w + pp;
        p = std::max(ww, k[i]);
        e1 = std::exp(ww - p);
        e2 = std::exp(k[i] - p);
        aa = e1 * aa + e2 * v[i];
        bb = e1 * bb + e2;
        pp = p;
      }
    }
  }
}

// The straightforward scalar WKV-4 backward (one channel at a time, std::exp,
// per-scan arrays of y and the normaliser): the baseline for fwd + bwd.
// The straightforward scalar WKV-4 backward, one channel at a time with
// std::exp and per-scan arrays of y and the normaliser (the maths of
// kernels/wkv4_math.h, unvectorised): the baseline for forward + backward.
void scalar_wkv_backward(const float* decay, const float* first, const float* k, const float* v, const float* gy,
                         float* gw_out, float* gu_out, float* gk, float* gv, int64_t B, int64_t T, int64_t C) {
  std::vector<float> y(static_cast<size_t>(T)), inv_dens(static_cast<size_t>(T)), log_weight(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      const float w = -std::exp(decay[c]), u = first[c];
      float gw = 0, gu = 0, num = 0, den = 0, dnum_dw = 0, dden_dw = 0, shift = -1e38f;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * T + t) * C + c;
        float top = std::max(shift, k[i] + u), ea = std::exp(shift - top), eb = std::exp(k[i] + u - top);
        const float inv_den = 1 / (ea * den + eb);
        y[static_cast<size_t>(t)] = (ea * num + eb * v[i]) * inv_den;
        inv_dens[static_cast<size_t>(t)] = inv_den;
        log_weight[static_cast<size_t>(t)] = k[i] + u - top;
        gw += gy[i] * (dnum_dw - dden_dw * y[static_cast<size_t>(t)]) * inv_den * ea;
        gu += gy[i] * (v[i] - y[static_cast<size_t>(t)]) * eb * inv_den;
        top = std::max(w + shift, k[i]);
        ea = std::exp(w + shift - top);
        eb = std::exp(k[i] - top);
        dnum_dw = ea * (num + dnum_dw);
        dden_dw = ea * (den + dden_dw);
        num = ea * num + eb * v[i];
        den = ea * den + eb;
        shift = top;
      }
      float g_num = 0, g_den = 0;
      shift = -1e38f;
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t i = (b * T + t) * C + c;
        const size_t ts = static_cast<size_t>(t);
        float ea = gy[i] * inv_dens[ts] * std::exp(log_weight[ts]), eb = std::exp(k[i] + shift);
        gk[i] = ea * (v[i] - y[ts]) + eb * (g_num * v[i] + g_den);
        gv[i] = ea + eb * g_num;
        const float top = std::max(w + shift, log_weight[ts] - k[i] - u);
        ea = std::exp(w + shift - top);
        eb = gy[i] * inv_dens[ts] * std::exp(log_weight[ts] - k[i] - u - top);
        g_num = ea * g_num + eb;
        g_den = ea * g_den - eb * y[ts];
        shift = top;
      }
      gw_out[c] += gw * w;
      gu_out[c] += gu;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = hardware_threads();
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: rwkv-bench-kernels [--threads N] [--quick]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  const double min_seconds = quick ? 0.2 : 1.0;
  std::printf("rwkv-bench-kernels: %d threads\n", threads);

  // ---- GEMM: square and the RWKV linear-layer shapes ([B*T, C] x [C, C]^T etc.)
  struct GemmCase {
    const char* name;
    int64_t m, n, k;
  };
  std::vector<GemmCase> gemms = {{"square-1024", 1024, 1024, 1024},
                                 {"square-2048", 2048, 2048, 2048},
                                 {"rwkv169m-att (4096x768x768)", 4096, 768, 768},
                                 {"rwkv169m-ffn-key (4096x3072x768)", 4096, 3072, 768}};
  if (quick) gemms.resize(2);
  double peak = 0.0;
  std::string json = "{\"threads\": " + std::to_string(threads) + ", \"gemm\": [";
  for (size_t g = 0; g < gemms.size(); ++g) {
    const GemmCase& gc = gemms[g];
    Tensor a = filled({gc.m, gc.k}, -1, 1, 1), b = filled({gc.n, gc.k}, -1, 1, 2), c = Tensor::empty({gc.m, gc.n}, DType::F32);
    double s = best_seconds([&] { matmul(a, false, b, true, c); }, min_seconds);
    double gflops = 2.0 * gc.m * gc.n * gc.k / s / 1e9;
    peak = std::max(peak, gflops);
    std::printf("gemm   %-34s %8.1f GFLOP/s  (%.2f ms)\n", gc.name, gflops, s * 1e3);
    json += std::string(g ? ", " : "") + "{\"name\": \"" + gc.name + "\", \"gflops\": " + std::to_string(gflops) + "}";
  }
  std::printf("gemm   measured sgemm peak: %.1f GFLOP/s\n", peak);
  json += "], \"sgemm_peak_gflops\": " + std::to_string(peak);

  // ---- WKV-4: the 169M shape at ctx 1024 (B=4, T=1024, C=768)
  const int64_t B = quick ? 2 : 4, T = 1024, C = 768;
  Tensor decay = filled({C}, -5, 1, 3), first = filled({C}, -1, 1, 4);
  Tensor k = filled({B, T, C}, -3, 3, 5), v = filled({B, T, C}, -1, 1, 6), gy = filled({B, T, C}, -1, 1, 7);
  Tensor y = Tensor::empty({B, T, C}, DType::F32), gk = Tensor::empty({B, T, C}, DType::F32), gv = Tensor::empty({B, T, C}, DType::F32);
  Tensor gd = Tensor::zeros({C}, DType::F32), gf = Tensor::zeros({C}, DType::F32);
  const double elements = static_cast<double>(B * T * C);
  double fwd = best_seconds([&] { wkv4_forward(decay, first, k, v, y); }, min_seconds);
  double bwd = best_seconds([&] { wkv4_backward(decay, first, k, v, gy, gd, gf, gk, gv); }, min_seconds);
  double scalar = best_seconds(
      [&] { scalar_wkv_forward(decay.data<float>(), first.data<float>(), k.data<float>(), v.data<float>(), y.data<float>(), B, T, C); },
      min_seconds);
  // Bytes a scan must move: forward reads k, v and writes y; backward reads k, v, gy, writes gk, gv (plus its scratch round trip).
  std::printf("wkv4   forward  B=%lld T=%lld C=%lld: %8.1f M elem/s  %6.2f GB/s  (%.2f ms)\n", (long long)B,
              (long long)T, (long long)C, elements / fwd / 1e6, 12.0 * elements / fwd / 1e9, fwd * 1e3);
  std::printf("wkv4   backward B=%lld T=%lld C=%lld: %8.1f M elem/s  %6.2f GB/s  (%.2f ms)\n", (long long)B,
              (long long)T, (long long)C, elements / bwd / 1e6, 28.0 * elements / bwd / 1e9, bwd * 1e3);
  double scalar_bwd = best_seconds(
      [&] {
        scalar_wkv_backward(decay.data<float>(), first.data<float>(), k.data<float>(), v.data<float>(), gy.data<float>(),
                            gd.data<float>(), gf.data<float>(), gk.data<float>(), gv.data<float>(), B, T, C);
      },
      min_seconds);
  std::printf("wkv4   scalar forward baseline (1 thread, std::exp): %8.1f M elem/s; vectorised forward is %.1fx\n",
              elements / scalar / 1e6, scalar / fwd);
  std::printf("wkv4   scalar forward + backward baseline: %.2f ms; vectorised forward + backward %.2f ms: %.1fx\n",
              (scalar + scalar_bwd) * 1e3, (fwd + bwd) * 1e3, (scalar + scalar_bwd) / (fwd + bwd));
  json += ", \"wkv4\": {\"B\": " + std::to_string(B) + ", \"T\": " + std::to_string(T) + ", \"C\": " + std::to_string(C) +
          ", \"forward_melem_s\": " + std::to_string(elements / fwd / 1e6) +
          ", \"backward_melem_s\": " + std::to_string(elements / bwd / 1e6) +
          ", \"scalar_forward_melem_s\": " + std::to_string(elements / scalar / 1e6) +
          ", \"forward_speedup_vs_scalar\": " + std::to_string(scalar / fwd) +
          ", \"forward_backward_speedup_vs_scalar\": " + std::to_string((scalar + scalar_bwd) / (fwd + bwd)) + "}}";
  // ---- dropout against the residual add it follows, same [B, T, C] (both in place, 8 bytes an element)
  {
    Tensor x = filled({B, T, C}, -1, 1, 8), other = filled({B, T, C}, -1, 1, 9);
    const DropoutKey key{0.1f, 1, 3, 0, 1};
    const double drop = best_seconds([&] { dropout_(x, key); }, min_seconds);
    const double add = best_seconds([&] { add_(x, other); }, min_seconds);
    std::printf("dropout p=0.1 B=%lld T=%lld C=%lld: %8.1f M elem/s  %6.2f GB/s  (%.2f ms; add_ of the same shape %.2f ms: %.2fx)\n",
                (long long)B, (long long)T, (long long)C, elements / drop / 1e6, 8.0 * elements / drop / 1e9, drop * 1e3,
                add * 1e3, drop / add);
    json.pop_back();  // reopen the object
    json += ", \"dropout\": {\"melem_s\": " + std::to_string(elements / drop / 1e6) +
            ", \"ms\": " + std::to_string(drop * 1e3) + ", \"add_ms\": " + std::to_string(add * 1e3) + "}}";
  }
  std::printf("JSON %s\n", json.c_str());
  return 0;
}
