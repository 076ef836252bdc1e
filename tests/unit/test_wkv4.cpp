// WKV-4: forward against the O(T^2) definition, backward against central
// finite differences (double), f32 against f64, extreme inputs, chunked state.
#include <cmath>

#include "core/threads.h"
#include "kernels/wkv4.h"
#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

struct WkvInputs {
  Tensor decay, first, k, v;  // [C], [C], [B,T,C], [B,T,C]
};

WkvInputs make_inputs(int64_t B, int64_t T, int64_t C, DType dtype, uint64_t seed, double k_range = 2.0) {
  return {random_tensor({C}, dtype, seed, -5.0, 1.0), random_tensor({C}, dtype, seed + 1, -1.0, 1.0),
          random_tensor({B, T, C}, dtype, seed + 2, -k_range, k_range),
          random_tensor({B, T, C}, dtype, seed + 3, -1.0, 1.0)};
}

// wkv_t straight from the definition (DESIGN.md section 4), in double.
Tensor wkv_reference(const WkvInputs& in) {
  const int64_t B = in.k.dim(0), T = in.k.dim(1), C = in.k.dim(2);
  auto decay = test::as_doubles(in.decay), first = test::as_doubles(in.first);
  auto k = test::as_doubles(in.k), v = test::as_doubles(in.v);
  Tensor y = Tensor::zeros({B, T, C}, DType::F64);
  double* yp = y.data<double>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      const double w = -std::exp(decay[c]), u = first[c];
      for (int64_t t = 0; t < T; ++t) {
        auto at = [&](int64_t i) { return static_cast<size_t>((b * T + i) * C + c); };
        double num = std::exp(u + k[at(t)]) * v[at(t)], den = std::exp(u + k[at(t)]);
        for (int64_t i = 0; i < t; ++i) {
          const double e = std::exp(static_cast<double>(t - 1 - i) * w + k[at(i)]);
          num += e * v[at(i)];
          den += e;
        }
        yp[at(t)] = num / den;
      }
    }
  }
  return y;
}

Tensor forward(const WkvInputs& in) {
  Tensor y = Tensor::empty(in.k.shape(), in.k.dtype());
  wkv4_forward(in.decay, in.first, in.k, in.v, y);
  return y;
}

TEST(Wkv4, ForwardMatchesDefinitionInDouble) {
  for (int64_t T : {1, 2, 7, 64, 512}) {
    WkvInputs in = make_inputs(2, T, 5, DType::F64, 100 + static_cast<uint64_t>(T));
    test::expect_close(forward(in), wkv_reference(in), 1e-12, 1e-12, "wkv4 f64 forward, T=" + std::to_string(T));
  }
}

TEST(Wkv4, FloatForwardMatchesDouble) {
  WkvInputs in = make_inputs(3, 300, 70, DType::F64, 7);  // C = 70: one full and one partial channel block
  WkvInputs in32{in.decay.to_dtype(DType::F32), in.first.to_dtype(DType::F32), in.k.to_dtype(DType::F32),
                 in.v.to_dtype(DType::F32)};
  test::expect_close(forward(in32), forward(in), 2e-5, 2e-6, "wkv4 f32 vs f64 forward");
}

// Gradients of L = sum(y * probe) by finite differences, for every input.
TEST(Wkv4, BackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 9, C = 3;
  WkvInputs in = make_inputs(B, T, C, DType::F64, 11);
  Tensor probe = random_tensor({B, T, C}, DType::F64, 99);
  Tensor g_decay = Tensor::zeros({C}, DType::F64), g_first = Tensor::zeros({C}, DType::F64);
  Tensor gk = Tensor::empty({B, T, C}, DType::F64), gv = Tensor::empty({B, T, C}, DType::F64);
  wkv4_backward(in.decay, in.first, in.k, in.v, probe, g_decay, g_first, gk, gv);
  auto loss = [&] { return test::dot(forward(in), probe); };
  test::expect_gradient(in.k, gk, loss, "dL/dk", 1e-6, 1e-8);
  test::expect_gradient(in.v, gv, loss, "dL/dv", 1e-6, 1e-8);
  test::expect_gradient(in.decay, g_decay, loss, "dL/dtime_decay", 1e-6, 1e-8);
  test::expect_gradient(in.first, g_first, loss, "dL/dtime_first", 1e-6, 1e-8);
}

TEST(Wkv4, ParameterGradientsAccumulate) {
  const int64_t B = 1, T = 4, C = 2;
  WkvInputs in = make_inputs(B, T, C, DType::F64, 5);
  Tensor probe = random_tensor({B, T, C}, DType::F64, 6);
  Tensor gd1 = Tensor::zeros({C}, DType::F64), gf1 = Tensor::zeros({C}, DType::F64);
  Tensor gk = Tensor::empty({B, T, C}, DType::F64), gv = Tensor::empty({B, T, C}, DType::F64);
  wkv4_backward(in.decay, in.first, in.k, in.v, probe, gd1, gf1, gk, gv);
  Tensor gd2 = gd1.clone(), gf2 = gf1.clone();
  wkv4_backward(in.decay, in.first, in.k, in.v, probe, gd2, gf2, gk, gv);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_DOUBLE_EQ(gd2.data<double>()[c], 2 * gd1.data<double>()[c]);
    EXPECT_DOUBLE_EQ(gf2.data<double>()[c], 2 * gf1.data<double>()[c]);
  }
}

TEST(Wkv4, FloatBackwardMatchesDouble) {
  const int64_t B = 2, T = 200, C = 40;
  WkvInputs in = make_inputs(B, T, C, DType::F64, 21);
  Tensor probe = random_tensor({B, T, C}, DType::F64, 22);
  auto run = [&](DType dt) {
    auto cvt = [&](const Tensor& t) { return t.to_dtype(dt); };
    Tensor gd = Tensor::zeros({C}, dt), gf = Tensor::zeros({C}, dt);
    Tensor gk = Tensor::empty({B, T, C}, dt), gv = Tensor::empty({B, T, C}, dt);
    wkv4_backward(cvt(in.decay), cvt(in.first), cvt(in.k), cvt(in.v), cvt(probe), gd, gf, gk, gv);
    return std::vector<Tensor>{gd, gf, gk, gv};
  };
  auto g32 = run(DType::F32), g64 = run(DType::F64);
  const char* names[] = {"g_time_decay", "g_time_first", "gk", "gv"};
  for (int i = 0; i < 4; ++i) test::expect_close(g32[i], g64[i], 1e-4, 1e-4, names[i]);
}

// |k| = 1000 and T = 4096: the shared-exponent state must keep everything finite,
// and f32 must still agree with f64.
TEST(Wkv4, StableForHugeKeysAndLongSequences) {
  const int64_t B = 1, T = 4096, C = 8;
  WkvInputs in = make_inputs(B, T, C, DType::F64, 31, 1000.0);
  // Pin the extremes: +1000 and -1000 keys in every channel.
  double* k = in.k.data<double>();
  for (int64_t c = 0; c < C; ++c) {
    k[10 * C + c] = 1000.0;
    k[11 * C + c] = -1000.0;
  }
  Tensor probe = random_tensor({B, T, C}, DType::F64, 32);
  for (DType dt : {DType::F64, DType::F32}) {
    auto cvt = [&](const Tensor& t) { return t.to_dtype(dt); };
    WkvInputs x{cvt(in.decay), cvt(in.first), cvt(in.k), cvt(in.v)};
    Tensor y = forward(x);
    Tensor gd = Tensor::zeros({C}, dt), gf = Tensor::zeros({C}, dt);
    Tensor gk = Tensor::empty({B, T, C}, dt), gv = Tensor::empty({B, T, C}, dt);
    wkv4_backward(x.decay, x.first, x.k, x.v, cvt(probe), gd, gf, gk, gv);
    for (const Tensor* t : {&y, &gd, &gf, &gk, &gv}) {
      for (double value : test::as_doubles(*t)) ASSERT_TRUE(std::isfinite(value)) << dtype_name(dt);
    }
    // wkv is a convex combination of the values: it stays within their range.
    for (double value : test::as_doubles(y)) ASSERT_LE(std::abs(value), 1.0 + 1e-5);
  }
  // f32 still tracks f64, though loosely: the shared exponent pp sits near 1000
  // where a float step is 6e-5, and w is added to it at every token, so the
  // relative weights of old and new terms drift by up to ~1e-2 over thousands
  // of steps. (The reference fp32 kernel has the same property.)
  WkvInputs in32{in.decay.to_dtype(DType::F32), in.first.to_dtype(DType::F32), in.k.to_dtype(DType::F32),
                 in.v.to_dtype(DType::F32)};
  test::expect_close(forward(in32), forward(in), 0.0, 3e-2, "wkv4 f32 vs f64 with |k| = 1000");
}

// Running a sequence in two chunks, carrying the state, equals one pass.
TEST(Wkv4, StateCarriesAcrossChunks) {
  const int64_t B = 2, T = 12, C = 6;
  WkvInputs in = make_inputs(B, T, C, DType::F64, 41);
  Tensor whole = forward(in);
  Tensor state = Tensor::empty({3, B, C}, DType::F64);
  double* s = state.data<double>();
  for (int64_t i = 0; i < B * C; ++i) {
    s[i] = 0.0;
    s[B * C + i] = 0.0;
    s[2 * B * C + i] = -1e38;
  }
  Tensor y = Tensor::empty({B, T, C}, DType::F64);
  for (int64_t t0 : {0, 5}) {
    const int64_t len = t0 == 0 ? 5 : T - 5;
    Tensor k = Tensor::empty({B, len, C}, DType::F64), v = Tensor::empty({B, len, C}, DType::F64);
    Tensor part = Tensor::empty({B, len, C}, DType::F64);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t c = 0; c < C; ++c) {
          k.data<double>()[(b * len + t) * C + c] = in.k.data<double>()[(b * T + t0 + t) * C + c];
          v.data<double>()[(b * len + t) * C + c] = in.v.data<double>()[(b * T + t0 + t) * C + c];
        }
      }
    }
    wkv4_forward(in.decay, in.first, k, v, part, state);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < len; ++t)
        for (int64_t c = 0; c < C; ++c)
          y.data<double>()[(b * T + t0 + t) * C + c] = part.data<double>()[(b * len + t) * C + c];
  }
  test::expect_close(y, whole, 1e-13, 1e-13, "chunked wkv4");
}

TEST(Wkv4, ResultsDoNotDependOnThreadCount) {
  WkvInputs in = make_inputs(3, 50, 130, DType::F32, 51);
  Tensor probe = random_tensor({3, 50, 130}, DType::F32, 52);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor gd = Tensor::zeros({130}, DType::F32), gf = Tensor::zeros({130}, DType::F32);
    Tensor gk = Tensor::empty({3, 50, 130}, DType::F32), gv = Tensor::empty({3, 50, 130}, DType::F32);
    wkv4_backward(in.decay, in.first, in.k, in.v, probe, gd, gf, gk, gv);
    return std::vector<std::vector<float>>{forward(in).to_vector<float>(), gd.to_vector<float>(),
                                           gk.to_vector<float>()};
  };
  auto one = run(1), two = run(2);
  set_num_threads(hardware_threads());
  EXPECT_EQ(one, two);
}

TEST(Wkv4, BadArgumentsGiveClearErrors) {
  WkvInputs in = make_inputs(2, 4, 3, DType::F32, 61);
  Tensor y = Tensor::empty({2, 4, 3}, DType::F32);
  Tensor wrong_decay = Tensor::zeros({4}, DType::F32);
  test::expect_error([&] { wkv4_forward(wrong_decay, in.first, in.k, in.v, y); },
                     {"wkv4_forward", "time_decay", "[4]", "expected [3]"});
  Tensor y64 = Tensor::empty({2, 4, 3}, DType::F64);
  test::expect_error([&] { wkv4_forward(in.decay, in.first, in.k, in.v, y64); }, {"wkv4_forward", "y", "f64"});
  Tensor flat = Tensor::empty({8, 3}, DType::F32);
  test::expect_error([&] { wkv4_forward(in.decay, in.first, flat, in.v, y); }, {"k", "[B, T, C]"});
  Tensor k16 = Tensor::empty({2, 4, 3}, DType::BF16);
  test::expect_error([&] { wkv4_forward(in.decay, in.first, k16, in.v, y); }, {"bf16", "CUDA"});
}

}  // namespace
}  // namespace rwkv
