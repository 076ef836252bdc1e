// Helpers shared by the kernel tests: seeded random tensors, closeness checks,
// and central finite differences in double precision.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/threads.h"

namespace rwkv::test {

// call() on each thread count in turn (set_num_threads), the process's count
// restored after: the results, for tests that compare their bits.
template <typename Call>
auto on_thread_counts(const std::vector<int>& counts, const Call& call) {
  const int saved = num_threads();
  std::vector<decltype(call())> results;
  for (int threads : counts) {
    set_num_threads(threads);
    results.push_back(call());
  }
  set_num_threads(saved);
  return results;
}

// A shell command's exit code (128 + the signal when one killed it, as a
// shell reports it; -1 when it could not start) and its stdout and stderr
// together, for tests that run the tools as a user does.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) r.output.append(buffer, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  return r;
}

// Uniform values in [lo, hi), reproducible from the seed, in the given dtype.
inline Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Tensor t64 = Tensor::empty(shape, DType::F64);
  double* p = t64.data<double>();
  for (int64_t i = 0; i < t64.numel(); ++i) p[i] = dist(rng);
  return dtype == DType::F64 ? t64 : t64.to_dtype(dtype);
}

inline std::vector<double> as_doubles(const Tensor& t) {
  Tensor host = t.is_cpu() ? t : t.to(Device::cpu());
  Tensor d = host.dtype() == DType::F64 ? host : host.to_dtype(DType::F64);
  return d.to_vector<double>();
}

// A measurement as gtest property text: three significant digits.
inline std::string three_digits(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

// The measured error of the worst comparison of the running test, as gtest
// properties (in --gtest_output=json/xml): worst_tolerance_used = max over
// elements of |actual - expected| / allowed (<= 1 passes), worst_relative_error
// = max |actual - expected| / max|expected|, worst_check = which comparison.
// scripts/gpu_errors_table.py turns the CUDA tests' into docs/testing.md's table.
inline void record_measured_error(const std::string& what, double used, double relative) {
  static std::string test;
  static double worst_used = -1.0;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : std::string();
  if (name != test) test = name, worst_used = -1.0;
  if (used <= worst_used) return;
  worst_used = used;
  ::testing::Test::RecordProperty("worst_tolerance_used", three_digits(used));
  ::testing::Test::RecordProperty("worst_relative_error", three_digits(relative));
  ::testing::Test::RecordProperty("worst_check", what);
}

// actual against expected, element by element, allowing atol + rtol |expected|.
struct ElementErrors {
  int64_t nonfinite = -1;  // the first element of actual that is not finite, or -1
  double worst = 0.0;      // the largest excess over the allowed error (<= 0 passes)
  size_t worst_i = 0;      // where
  double used = 0.0;       // max |actual - expected| / allowed
  double relative = 0.0;   // max |actual - expected| / max|expected|
};

inline ElementErrors element_errors(const std::vector<double>& a, const std::vector<double>& e, double rtol,
                                    double atol) {
  ElementErrors r;
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) {
      r.nonfinite = static_cast<int64_t>(i);
      return r;
    }
    const double diff = std::abs(a[i] - e[i]), allowed = atol + rtol * std::abs(e[i]);
    r.used = std::max(r.used, allowed > 0 ? diff / allowed : (diff > 0 ? 1e300 : 0.0));
    max_diff = std::max(max_diff, diff);
    max_abs = std::max(max_abs, std::abs(e[i]));
    if (diff - allowed > r.worst) {
      r.worst = diff - allowed;
      r.worst_i = i;
    }
  }
  r.relative = max_abs > 0 ? max_diff / max_abs : max_diff;
  return r;
}

// Every element within atol + rtol * |expected|; reports the worst element.
inline void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol,
                         const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  std::vector<double> a = as_doubles(actual), e = as_doubles(expected);
  const ElementErrors r = element_errors(a, e, rtol, atol);
  ASSERT_TRUE(r.nonfinite < 0) << what << ": element " << r.nonfinite << " is " << a[static_cast<size_t>(r.nonfinite)];
  record_measured_error(what, r.used, r.relative);
  EXPECT_LE(r.worst, 0.0) << what << ": element " << r.worst_i << " is " << a[r.worst_i] << ", expected "
                          << e[r.worst_i] << " (rtol " << rtol << ", atol " << atol << ")";
}

// Sum over elements of t * probe: a scalar loss whose gradient wrt t is probe.
inline double dot(const Tensor& t, const Tensor& probe) {
  std::vector<double> a = as_doubles(t), b = as_doubles(probe);
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic, the gradient of loss() wrt the f64 tensor x, against central
// differences (loss(x + h e_i) - loss(x - h e_i)) / 2h for every element
// (or every stride-th one for big tensors). The error allowed per element is
// atol + rtol * |numeric|.
inline void expect_gradient(Tensor& x, const Tensor& analytic, const std::function<double()>& loss,
                            const std::string& what, double rtol = 1e-6, double atol = 1e-8, double h = 1e-6,
                            int64_t stride = 1) {
  ASSERT_EQ(x.dtype(), DType::F64) << what;
  ASSERT_EQ(x.shape(), analytic.shape()) << what;
  double* p = x.data<double>();
  std::vector<double> g = as_doubles(analytic);
  for (int64_t i = 0; i < x.numel(); i += stride) {
    double saved = p[i];
    p[i] = saved + h;
    double up = loss();
    p[i] = saved - h;
    double down = loss();
    p[i] = saved;
    double numeric = (up - down) / (2.0 * h);
    ASSERT_NEAR(g[static_cast<size_t>(i)], numeric, atol + rtol * std::abs(numeric))
        << what << ": gradient element " << i;
  }
}

// Runs fn and expects an rwkv::Error whose message contains every fragment.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
  } catch (const Error& e) {
    std::string message = e.what();
    for (const std::string& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message;
    return;
  }
  ADD_FAILURE() << "expected an rwkv::Error";
}

}  // namespace rwkv::test
