#include "trainer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace rwkv {

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng) {
  RWKV_CHECK(!logits.empty(), "sample_token: empty logits");
  RWKV_CHECK(options.temperature >= 0.0, "temperature must be >= 0, got ", options.temperature);
  RWKV_CHECK(options.top_p > 0.0 && options.top_p <= 1.0, "top_p must be in (0, 1], got ", options.top_p);
  RWKV_CHECK(options.top_k >= 0, "top_k must be >= 0 (0: no limit), got ", options.top_k);
  const size_t V = logits.size();
  const size_t argmax = static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (options.temperature == 0.0) return static_cast<int32_t>(argmax);
  // Softmax at temperature, in double.
  std::vector<double> p(V);
  const double max_logit = logits[argmax];
  double sum = 0.0;
  for (size_t i = 0; i < V; ++i) sum += p[i] = std::exp((logits[i] - max_logit) / options.temperature);
  // Nucleus: most probable first (ties by id, so the order is deterministic).
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)] || (p[static_cast<size_t>(a)] == p[static_cast<size_t>(b)] && a < b); });
  double kept = 0.0;
  size_t n = 0;
  const size_t limit = options.top_k > 0 ? std::min(V, static_cast<size_t>(options.top_k)) : V;
  while (n < limit && (n == 0 || kept < options.top_p * sum)) kept += p[static_cast<size_t>(order[n++])];
  std::uniform_real_distribution<double> uniform(0.0, kept);
  double r = uniform(rng);
  for (size_t i = 0; i < n; ++i) {
    r -= p[static_cast<size_t>(order[i])];
    if (r <= 0.0) return order[i];
  }
  return order[n - 1];
}

RepetitionPenalty::RepetitionPenalty(PenaltyOptions options) : options_(options) {
  RWKV_CHECK(options.decay >= 0.0 && options.decay <= 1.0, "penalty decay must be in [0, 1], got ", options.decay);
}

void RepetitionPenalty::apply(std::span<float> logits) const {
  if (!options_.active()) return;
  for (const auto& [token, count] : counts_) {
    if (static_cast<size_t>(token) < logits.size())
      logits[static_cast<size_t>(token)] -= static_cast<float>(options_.presence + options_.frequency * count);
  }
}

void RepetitionPenalty::record(int32_t token) {
  for (auto& entry : counts_) entry.second *= options_.decay;
  counts_[token] += 1.0;
}

}  // namespace rwkv
