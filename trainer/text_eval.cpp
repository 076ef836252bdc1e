#include "trainer/text_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/text_sources.h"

namespace rwkv {

TextWindows read_text_windows(const std::vector<std::string>& paths, const data::Tokenizer& tokenizer, int64_t ctx_len,
                              int64_t limit) {
  RWKV_CHECK(ctx_len >= 1, "--ctx-len expects a length >= 1, got ", ctx_len);
  data::RecordReader reader(data::resolve_inputs(paths));
  TextWindows out;
  data::RawRecord record;
  while ((limit <= 0 || out.documents < limit) && reader.next(record)) {
    const std::string text = data::record_text(record, reader.inputs(), "text");
    std::vector<int32_t> tokens = {tokenizer.eod_id()};
    const std::vector<int32_t> body = tokenizer.encode(text);
    if (body.empty()) continue;  // nothing to predict
    tokens.insert(tokens.end(), body.begin(), body.end());
    ++out.documents;
    out.bytes += static_cast<int64_t>(text.size());
    // Window k reads tokens [k ctx_len, (k+1) ctx_len] and predicts all but its first.
    for (size_t begin = 0; begin + 1 < tokens.size(); begin += static_cast<size_t>(ctx_len)) {
      const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(ctx_len) + 1);
      out.windows.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(begin),
                               tokens.begin() + static_cast<std::ptrdiff_t>(end));
    }
  }
  RWKV_CHECK(out.documents > 0, paths.empty() ? std::string("--text") : paths[0], ": no text to score");
  return out;
}

double TextScore::loss() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
double TextScore::perplexity() const { return std::exp(loss()); }
double TextScore::bits_per_byte() const {
  return bytes > 0 ? nll_sum / std::log(2.0) / static_cast<double>(bytes) : 0.0;
}

TextScore evaluate_text(Rwkv4Model& model, const TextWindows& text, int64_t batch,
                        const std::function<void(int64_t, const TextScore&)>& progress) {
  RWKV_CHECK(batch >= 1, "evaluate_text: batch must be >= 1, got ", batch);
  // Windows of about the same length share a forward, longest first (the
  // model's buffers are then allocated once); shorter rows are right-padded,
  // which the causal model never reads, and their padding is not counted.
  std::vector<size_t> order(text.windows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return text.windows[a].size() > text.windows[b].size(); });
  TextScore score;
  score.documents = text.documents;
  score.bytes = text.bytes;
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(batch)) {
    const size_t end = std::min(order.size(), first + static_cast<size_t>(batch));
    const int64_t B = static_cast<int64_t>(end - first);
    const int64_t T = static_cast<int64_t>(text.windows[order[first]].size()) - 1;  // predictions of the longest
    std::vector<int32_t> inputs(static_cast<size_t>(B * T), 0), targets(static_cast<size_t>(B * T), 0);  // [B, T]
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t>& w = text.windows[order[first + static_cast<size_t>(b)]];
      std::copy(w.begin(), w.end() - 1, inputs.begin() + b * T);
      std::copy(w.begin() + 1, w.end(), targets.begin() + b * T);
    }
    const std::vector<double> losses =
        model.forward_token_losses(Tensor::from_vector<int32_t>(inputs, {B, T}), Tensor::from_vector<int32_t>(targets, {B, T}));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t predicted = static_cast<int64_t>(text.windows[order[first + static_cast<size_t>(b)]].size()) - 1;
      for (int64_t t = 0; t < predicted; ++t) score.nll_sum += losses[static_cast<size_t>(b * T + t)];
      score.tokens += predicted;
    }
    if (progress) progress(static_cast<int64_t>(end), score);
  }
  return score;
}

}  // namespace rwkv
