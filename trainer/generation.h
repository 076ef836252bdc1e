// Continuing a prompt with an RWKV-4 model: one or several samples at once
// (the rows of one batch through the recurrent form), each with its own
// random stream, optional repetition penalties, and an optional stop text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/sampling.h"

namespace rwkv {

struct GenerationOptions {
  int64_t max_tokens = 200;   // per sample
  int64_t samples = 1;        // continuations of the same prompt, run as one batch
  uint64_t seed = 0;          // sample i draws from mt19937_64(seed + i)
  std::string stop;           // "" = none; a sample ends where its text first holds stop (left out)
  SamplingOptions sampling;
  PenaltyOptions penalty;
};

// Called with text of sample i as it becomes final (never text that may turn
// out to be the start of the stop text).
using TextSink = std::function<void(int64_t sample, const std::string& text)>;

// The continuations (without the prompt), one per sample. A sample ends at
// the tokenizer's end-of-document token, at the stop text, or after
// max_tokens tokens. Runs where the model's parameters are.
std::vector<std::string> generate(const Rwkv4Model& model, const data::Tokenizer& tokenizer, const std::string& prompt,
                                  const GenerationOptions& options, const TextSink& on_text = {});

}  // namespace rwkv
