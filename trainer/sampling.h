// Picking the next token from logits: temperature, top-k and nucleus (top-p)
// sampling, reproducible from a seed, and ChatRWKV's repetition penalties.
// temperature 0 means greedy (argmax).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <span>

namespace rwkv {

struct SamplingOptions {
  double temperature = 1.0;
  double top_p = 0.85;  // keep the smallest set of tokens whose probability reaches top_p
  int64_t top_k = 0;    // then at most the k most probable of them; 0 = no limit
};

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng);

// ChatRWKV's repetition penalties (alpha_presence, alpha_frequency,
// alpha_decay). Every token generated so far has a count c_t; before each
// sample
//
//     logit_t -= presence + frequency * c_t        (for every counted t)
//
// and after it every count is multiplied by decay, then the sampled token's
// count grows by 1. ChatRWKV's chat uses presence = frequency = 0.25 (0.2 in
// older demos) with decay 0.996; all 0 turns the penalty off.
struct PenaltyOptions {
  double presence = 0.0;
  double frequency = 0.0;
  double decay = 0.996;
  bool active() const { return presence != 0.0 || frequency != 0.0; }
};

class RepetitionPenalty {
 public:
  explicit RepetitionPenalty(PenaltyOptions options);
  void apply(std::span<float> logits) const;  // ids beyond the span are ignored
  void record(int32_t token);
  const std::map<int32_t, double>& counts() const { return counts_; }

 private:
  PenaltyOptions options_;
  std::map<int32_t, double> counts_;  // c_t of every token generated so far
};

}  // namespace rwkv
