#include "trainer/lambada_eval.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/text_sources.h"

namespace rwkv {

std::vector<LambadaPassage> read_lambada(const std::string& path, const data::Tokenizer& tokenizer, int64_t limit) {
  std::vector<data::InputFile> inputs = data::resolve_inputs({path});
  RWKV_CHECK(inputs.size() == 1 && (inputs[0].format == data::InputFormat::Jsonl || inputs[0].format == data::InputFormat::JsonlZst),
             path, ": LAMBADA is read from one JSON-lines file (.jsonl or .jsonl.zst) with a \"text\" field per passage");
  data::RecordReader reader(inputs);
  std::vector<LambadaPassage> out;
  data::RawRecord record;
  while ((limit <= 0 || static_cast<int64_t>(out.size()) < limit) && reader.next(record)) {
    const std::string text = data::record_text(record, reader.inputs(), "text");
    LambadaPassage p;
    p.position = data::record_position(record, reader.inputs());
    const size_t cut = text.find_last_of(' ');
    RWKV_CHECK(cut != std::string::npos && cut > 0 && cut + 1 < text.size(), p.position,
               ": a LAMBADA passage needs a context, a space and a last word; this one has ",
               cut == std::string::npos ? "no space" : "nothing on one side of its last space");
    p.context = tokenizer.encode(std::string_view(text).substr(0, cut));
    p.target = tokenizer.encode(std::string_view(text).substr(cut));  // " word": the space is the word's
    RWKV_CHECK(!p.target.empty(), p.position, ": the last word encodes to no tokens with ", tokenizer.name());
    out.push_back(std::move(p));
  }
  RWKV_CHECK(!out.empty(), path, ": no passages\n  ---> HINT: LAMBADA's test set is one {\"text\": ...} object per line");
  return out;
}

std::vector<PassageScore> score_passages(Rwkv4Model& model, const std::vector<const LambadaPassage*>& batch, int32_t bos) {
  RWKV_CHECK(!batch.empty(), "score_passages: an empty batch");
  // Row b = [bos] + context + target without its last token (predicted,
  // never read), right-padded with bos to the longest row: logits row i
  // predicts token i + 1, so the target's tokens are predicted by rows
  // |context| .. |context| + |target| - 1, and the padding after them
  // changes nothing (the model is causal; rows do not mix).
  const int64_t B = static_cast<int64_t>(batch.size()), V = model.shape().vocab_size;
  int64_t T = 0;
  for (const LambadaPassage* p : batch) T = std::max<int64_t>(T, static_cast<int64_t>(p->context.size() + p->target.size()));
  std::vector<int32_t> tokens(static_cast<size_t>(B * T), bos);  // [B, T]
  for (int64_t b = 0; b < B; ++b) {
    const LambadaPassage& p = *batch[static_cast<size_t>(b)];
    int32_t* row = tokens.data() + b * T + 1;
    row = std::copy(p.context.begin(), p.context.end(), row);
    std::copy(p.target.begin(), p.target.end() - 1, row);
  }
  // Only the rows that predict a target token leave the model: row r of
  // `logits` is position rows[r] of the flattened [B*T].
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b) {
    const LambadaPassage& p = *batch[static_cast<size_t>(b)];
    for (size_t j = 0; j < p.target.size(); ++j)
      rows.push_back(static_cast<int32_t>(b * T + static_cast<int64_t>(p.context.size() + j)));
  }
  Tensor logits = Tensor::empty({static_cast<int64_t>(rows.size()), V}, DType::F32);  // [R, V]
  model.forward_logit_rows(Tensor::from_vector<int32_t>(tokens, {B, T}), rows, logits);
  std::vector<PassageScore> scores(batch.size());
  const float* row = logits.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const LambadaPassage& p = *batch[static_cast<size_t>(b)];
    PassageScore& score = scores[static_cast<size_t>(b)];
    score.correct = true;
    for (size_t j = 0; j < p.target.size(); ++j, row += V) {
      const int32_t want = p.target[j];
      RWKV_CHECK(want >= 0 && want < V, p.position, ": token id ", want, " is outside the model's vocabulary of ", V);
      const float* top = std::max_element(row, row + V);
      // -log softmax(row)[want] = log sum exp(row - max) - (row[want] - max), in double.
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - *top);
      score.nll += std::log(sum) - (static_cast<double>(row[want]) - *top);
      score.correct = score.correct && top - row == want;
    }
  }
  return scores;
}

PassageScore score_passage(Rwkv4Model& model, const LambadaPassage& passage, int32_t bos) {
  return score_passages(model, {&passage}, bos)[0];
}

double LambadaScore::perplexity() const { return passages > 0 ? std::exp(nll_sum / static_cast<double>(passages)) : 0.0; }

double LambadaScore::accuracy() const {
  return passages > 0 ? static_cast<double>(correct) / static_cast<double>(passages) : 0.0;
}

void LambadaScore::add(const PassageScore& s, int64_t tokens) {
  ++passages;
  target_tokens += tokens;
  nll_sum += s.nll;
  correct += s.correct ? 1 : 0;
}

std::vector<PassageScore> score_passages_batched(Rwkv4Model& model, const std::vector<LambadaPassage>& passages,
                                                 int32_t bos, int64_t batch, const BatchScored& scored) {
  RWKV_CHECK(batch >= 1, "score_passages_batched: batch must be >= 1, got ", batch);
  // Batches of passages of about the same length (little padding), longest
  // first (so the model's buffers are allocated once, for the first batch).
  std::vector<size_t> order(passages.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto length = [&](size_t i) { return passages[i].context.size() + passages[i].target.size(); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return length(a) > length(b); });
  std::vector<PassageScore> scores(passages.size());
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(batch)) {
    const size_t end = std::min(order.size(), first + static_cast<size_t>(batch));
    std::vector<const LambadaPassage*> group;
    for (size_t k = first; k < end; ++k) group.push_back(&passages[order[k]]);
    const std::vector<PassageScore> got = score_passages(model, group, bos);
    for (size_t k = first; k < end; ++k) scores[order[k]] = got[k - first];
    if (scored) scored(std::vector<size_t>(order.begin() + static_cast<std::ptrdiff_t>(first),
                                           order.begin() + static_cast<std::ptrdiff_t>(end)),
                       scores);
  }
  return scores;
}

LambadaScore evaluate_lambada(Rwkv4Model& model, const std::vector<LambadaPassage>& passages, int32_t bos, int64_t batch,
                              const std::function<void(int64_t, const LambadaScore&)>& progress) {
  RWKV_CHECK(batch >= 1, "evaluate_lambada: batch must be >= 1, got ", batch);
  LambadaScore running;
  const std::vector<PassageScore> scores = score_passages_batched(
      model, passages, bos, batch, [&](const std::vector<size_t>& done, const std::vector<PassageScore>& so_far) {
        for (size_t i : done) running.add(so_far[i], static_cast<int64_t>(passages[i].target.size()));
        if (progress) progress(running.passages, running);
      });
  // The total is summed in file order, so it does not depend on batch.
  LambadaScore total;
  for (size_t i = 0; i < passages.size(); ++i) total.add(scores[i], static_cast<int64_t>(passages[i].target.size()));
  return total;
}

}  // namespace rwkv
