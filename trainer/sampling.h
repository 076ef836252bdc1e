// Picking the next token from logits: temperature and nucleus (top-p)
// sampling, reproducible from a seed. temperature 0 means greedy (argmax).
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace rwkv {

struct SamplingOptions {
  double temperature = 1.0;
  double top_p = 0.85;  // keep the smallest set of tokens whose probability reaches top_p
};

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace rwkv
