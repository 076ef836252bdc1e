// Perplexity of a model on text (a held-out slice of the Pile, a user's own
// documents): every document is read as [eod] + its tokens and cut into
// windows of ctx_len predictions; each window is one sequence of the
// model's sequence form, starting from an empty state (as training reads
// its ctx_len samples), and every token after the first is predicted.
//
//   loss          = mean over predicted tokens of -log p(token | window so far)
//   perplexity    = exp(loss)
//   bits per byte = sum of -log2 p over all predicted tokens / UTF-8 bytes of
//                   the text (comparable across tokenizers, as the Pile
//                   paper reports it)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

struct TextWindows {
  std::vector<std::vector<int32_t>> windows;  // each: 2..ctx_len+1 tokens, the first is only read
  int64_t documents = 0;
  int64_t bytes = 0;  // UTF-8 bytes of the documents' text
};

// The documents of text files (.txt, .jsonl with a "text" field, .zst of
// either; data/text_sources.h), up to `limit` documents (0: all), as windows.
TextWindows read_text_windows(const std::vector<std::string>& paths, const data::Tokenizer& tokenizer, int64_t ctx_len,
                              int64_t limit = 0);

struct TextScore {
  int64_t documents = 0;
  int64_t tokens = 0;  // predicted tokens
  int64_t bytes = 0;
  double nll_sum = 0;  // natural log
  double loss() const;
  double perplexity() const;
  double bits_per_byte() const;
};

// Every window, `batch` windows a forward (grouped by length, the shorter
// rows right-padded and their padding not counted). progress (if set) gets
// the windows done and the running score.
TextScore evaluate_text(Rwkv4Model& model, const TextWindows& text, int64_t batch = 8,
                        const std::function<void(int64_t done, const TextScore&)>& progress = {});

}  // namespace rwkv
