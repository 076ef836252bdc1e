#include "trainer/generation.h"

#include <algorithm>
#include <random>

#include "core/error.h"
#include "trainer/rwkv4_recurrent.h"

namespace rwkv {

namespace {

// Every row of `to` ([rows, C] viewed as a row list) becomes row `row` of `from`.
void broadcast_rows(const Tensor& from, int64_t row, Tensor& to, int64_t first, int64_t count) {
  for (int64_t i = 0; i < count; ++i) to.slice_rows(first + i, 1).copy_from(from.slice_rows(row, 1));
}

// The state after the prompt (batch 1) for `samples` rows.
Rwkv4State replicate(const Rwkv4State& one, const Rwkv4Shape& shape, int64_t samples, Device device) {
  Rwkv4State many = Rwkv4State::fresh(shape, samples, one.att_shift.at(0).dtype(), device);
  const int64_t C = shape.n_embd;
  for (size_t l = 0; l < one.att_shift.size(); ++l) {
    broadcast_rows(one.att_shift[l], 0, many.att_shift[l], 0, samples);
    broadcast_rows(one.ffn_shift[l], 0, many.ffn_shift[l], 0, samples);
    const Tensor src = one.wkv[l].view({3, C});
    Tensor dst = many.wkv[l].view({3 * samples, C});
    for (int64_t a = 0; a < 3; ++a) broadcast_rows(src, a, dst, a * samples, samples);  // aa, bb, pp planes
  }
  return many;
}

// One sample's text: what is final goes to the sink; with a stop text the
// last stop.size() - 1 bytes wait, since they may begin it.
struct SampleText {
  std::string text;
  size_t emitted = 0;
  bool done = false;

  void emit_to(size_t end, int64_t sample, const TextSink& sink) {
    if (end > emitted && sink) sink(sample, text.substr(emitted, end - emitted));
    emitted = std::max(emitted, end);
  }
  void append(const std::string& piece, const std::string& stop, int64_t sample, const TextSink& sink) {
    const size_t before = text.size();
    text += piece;
    if (stop.empty()) {
      emit_to(text.size(), sample, sink);
      return;
    }
    const size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
    const size_t at = text.find(stop, from);
    if (at != std::string::npos) {
      text.resize(at);
      emit_to(at, sample, sink);
      done = true;
    } else if (text.size() >= stop.size()) {
      emit_to(text.size() - (stop.size() - 1), sample, sink);
    }
  }
  void finish(int64_t sample, const TextSink& sink) {
    emit_to(text.size(), sample, sink);
    done = true;
  }
};

}  // namespace

std::vector<std::string> generate(const Rwkv4Model& model, const data::Tokenizer& tokenizer, const std::string& prompt,
                                  const GenerationOptions& options, const TextSink& on_text) {
  RWKV_CHECK(options.samples >= 1, "generate: samples must be at least 1, got ", options.samples);
  RWKV_CHECK(options.max_tokens >= 0, "generate: max_tokens must be >= 0, got ", options.max_tokens);
  const Rwkv4Shape& shape = model.shape();
  const Device device = model.tensors().emb.device();
  const int64_t N = options.samples, V = shape.vocab_size;
  std::vector<int32_t> ids = tokenizer.encode(prompt);
  if (ids.empty()) ids.push_back(tokenizer.eod_id());  // start from a document boundary
  const int64_t prompt_length = static_cast<int64_t>(ids.size());

  // The prompt once, at batch 1; its last row's logits start every sample.
  Rwkv4State prompt_state = Rwkv4State::fresh(shape, 1, DType::F32, device);
  Tensor prompt_logits = Tensor::empty({1, prompt_length, V}, DType::F32, device);
  rwkv4_forward_recurrent(model.tensors(), shape, Tensor::from_vector<int32_t>(ids, {1, prompt_length}), prompt_state,
                          prompt_logits);
  const std::vector<float> first =
      prompt_logits.view({prompt_length, V}).slice_rows(prompt_length - 1, 1).to(Device::cpu()).to_vector<float>();
  prompt_logits = Tensor();
  Rwkv4State state = N == 1 ? std::move(prompt_state) : replicate(prompt_state, shape, N, device);

  std::vector<std::mt19937_64> rngs;
  std::vector<RepetitionPenalty> penalties;
  std::vector<SampleText> texts(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    rngs.emplace_back(options.seed + static_cast<uint64_t>(i));
    penalties.emplace_back(options.penalty);
  }
  // Sampling reads [N, V] floats on the host each step; only ids the
  // tokenizer can decode are candidates (a padded vocabulary has more rows).
  const size_t candidates = static_cast<size_t>(std::min<int64_t>(V, tokenizer.vocab_size()));
  std::vector<float> logits(static_cast<size_t>(N * V));
  for (int64_t i = 0; i < N; ++i) std::copy(first.begin(), first.end(), logits.begin() + i * V);
  Tensor next = Tensor::empty({N, 1}, DType::I32);
  Tensor step_logits = Tensor::empty({N, 1, V}, DType::F32, device);
  for (int64_t n = 0; n < options.max_tokens; ++n) {
    bool any_running = false;
    for (int64_t i = 0; i < N; ++i) {
      SampleText& sample = texts[static_cast<size_t>(i)];
      int32_t token = tokenizer.eod_id();  // a finished row still takes a token: the batch keeps its shape
      if (!sample.done) {
        const std::span<float> row(logits.data() + i * V, candidates);
        penalties[static_cast<size_t>(i)].apply(row);
        token = sample_token(row, options.sampling, rngs[static_cast<size_t>(i)]);
        if (token == tokenizer.eod_id()) {
          sample.finish(i, on_text);
        } else {
          penalties[static_cast<size_t>(i)].record(token);
          sample.append(tokenizer.decode(std::span<const int32_t>(&token, 1)), options.stop, i, on_text);
        }
      }
      any_running = any_running || !sample.done;
      next.data<int32_t>()[i] = token;
    }
    if (!any_running || n + 1 == options.max_tokens) break;  // the last token's logits are never read
    rwkv4_forward_recurrent(model.tensors(), shape, next, state, step_logits);
    logits = step_logits.to_vector<float>();
  }
  std::vector<std::string> out;
  for (int64_t i = 0; i < N; ++i) {
    SampleText& sample = texts[static_cast<size_t>(i)];
    sample.finish(i, on_text);
    out.push_back(sample.text);
  }
  return out;
}

}  // namespace rwkv
