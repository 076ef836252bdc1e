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

PassageScore score_passage(Rwkv4Model& model, const LambadaPassage& passage, int32_t bos) {
  // tokens = [bos] + context + target; logits row i predicts token i + 1, so
  // the target's tokens are predicted by rows |context| .. |context| + |target| - 1.
  std::vector<int32_t> tokens;
  tokens.reserve(1 + passage.context.size() + passage.target.size());
  tokens.push_back(bos);
  tokens.insert(tokens.end(), passage.context.begin(), passage.context.end());
  tokens.insert(tokens.end(), passage.target.begin(), passage.target.end());
  tokens.pop_back();  // the last target token is predicted, never read
  const int64_t T = static_cast<int64_t>(tokens.size()), V = model.shape().vocab_size;
  Tensor input = Tensor::from_vector<int32_t>(tokens, {1, T});
  Tensor logits = Tensor::empty({1, T, V}, DType::F32);  // [1, T, V]
  model.forward_logits(input, logits);
  PassageScore score;
  score.correct = true;
  for (size_t j = 0; j < passage.target.size(); ++j) {
    const float* row = logits.data<float>() + (static_cast<int64_t>(passage.context.size()) + static_cast<int64_t>(j)) * V;
    const int32_t want = passage.target[j];
    RWKV_CHECK(want >= 0 && want < V, passage.position, ": token id ", want, " is outside the model's vocabulary of ", V);
    const float* top = std::max_element(row, row + V);
    // -log softmax(row)[want] = log sum exp(row - max) - (row[want] - max), in double.
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - *top);
    score.nll += std::log(sum) - (static_cast<double>(row[want]) - *top);
    score.correct = score.correct && top - row == want;
  }
  return score;
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

LambadaScore evaluate_lambada(Rwkv4Model& model, const std::vector<LambadaPassage>& passages, int32_t bos,
                              const std::function<void(int64_t, const LambadaScore&)>& progress) {
  LambadaScore total;
  for (const LambadaPassage& p : passages) {
    total.add(score_passage(model, p, bos), static_cast<int64_t>(p.target.size()));
    if (progress) progress(total.passages, total);
  }
  return total;
}

}  // namespace rwkv
