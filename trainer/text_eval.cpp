#include "trainer/text_eval.h"

#include <algorithm>
#include <cmath>
#include <map>

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
  // Windows of one length share a forward, longest first (the model's
  // buffers are then allocated once). Sums in double, in that fixed order.
  std::map<size_t, std::vector<size_t>, std::greater<>> by_length;
  for (size_t i = 0; i < text.windows.size(); ++i) by_length[text.windows[i].size()].push_back(i);
  TextScore score;
  score.documents = text.documents;
  score.bytes = text.bytes;
  int64_t done = 0;
  for (const auto& [length, windows] : by_length) {
    const int64_t T = static_cast<int64_t>(length) - 1;  // predictions per window
    for (size_t first = 0; first < windows.size(); first += static_cast<size_t>(batch)) {
      const size_t end = std::min(windows.size(), first + static_cast<size_t>(batch));
      const int64_t B = static_cast<int64_t>(end - first);
      std::vector<int32_t> inputs, targets;  // [B, T]
      for (size_t k = first; k < end; ++k) {
        const std::vector<int32_t>& w = text.windows[windows[k]];
        inputs.insert(inputs.end(), w.begin(), w.end() - 1);
        targets.insert(targets.end(), w.begin() + 1, w.end());
      }
      const double mean = model.forward_loss(Tensor::from_vector<int32_t>(inputs, {B, T}),
                                             Tensor::from_vector<int32_t>(targets, {B, T}));
      score.nll_sum += mean * static_cast<double>(B * T);
      score.tokens += B * T;
      done += B;
      if (progress) progress(done, score);
    }
  }
  return score;
}

}  // namespace rwkv
