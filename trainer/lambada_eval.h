// LAMBADA (Paperno et al., 2016), scored the way the RWKV papers and
// ChatRWKV's evaluation score it, so numbers compare with the published
// ones (RWKV-4-Pile 169M: perplexity ~29, accuracy ~33%).
//
// Each passage's last word is the target: the passage is cut at its last
// space into context and " word". The model reads [eod] + context + target
// (eod: the document separator, token 0 of the Pile tokenizer) and, at every
// target token, predicts the next one:
//
//   nll(passage)    = sum over target tokens t of -log softmax(logits)[t]
//   correct(passage) = every target token is the argmax of its logits
//   perplexity      = exp(mean over passages of nll)     (per passage, not per token)
//   accuracy        = share of correct passages
//
// The model runs its sequence form on its device and precision (CPU f32, or
// a GPU in f32 or bf16); only the logit rows that predict a target token
// come to the host (Rwkv4Model::forward_logit_rows), in f32, and the
// log-softmax runs in double.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

struct LambadaPassage {
  std::vector<int32_t> context;  // the tokens before the last space
  std::vector<int32_t> target;   // " last_word"
  std::string position;          // "file:line", for messages
};

// The passages of a LAMBADA file (JSON lines with a "text" field, as
// lambada_test.jsonl; .jsonl.zst too), the first `limit` of them (0: all).
// A passage without a space, or one whose last word encodes to nothing, is
// an error naming its file and line.
std::vector<LambadaPassage> read_lambada(const std::string& path, const data::Tokenizer& tokenizer, int64_t limit = 0);

struct PassageScore {
  double nll = 0;        // -log p(target | context), summed over the target's tokens
  bool correct = false;  // greedy decoding gives the whole target
};

// One passage through the model (whole and unpadded on this rank). bos: the
// token read before the context (the tokenizer's eod_id()).
PassageScore score_passage(Rwkv4Model& model, const LambadaPassage& passage, int32_t bos);
// Several in one forward ([B, T]: each row right-padded to the longest,
// which the causal model never reads), one score per passage.
std::vector<PassageScore> score_passages(Rwkv4Model& model, const std::vector<const LambadaPassage*>& batch, int32_t bos);

// Every passage, `batch` at a time (grouped by length, longest first): one
// score per passage, in the given order. scored (if set) is called after each
// batch with the indices it scored and the scores so far.
using BatchScored = std::function<void(const std::vector<size_t>& scored, const std::vector<PassageScore>& scores)>;
std::vector<PassageScore> score_passages_batched(Rwkv4Model& model, const std::vector<LambadaPassage>& passages,
                                                 int32_t bos, int64_t batch, const BatchScored& scored = {});

struct LambadaScore {
  int64_t passages = 0;
  int64_t target_tokens = 0;
  double nll_sum = 0;
  int64_t correct = 0;
  double perplexity() const;  // exp(nll_sum / passages)
  double accuracy() const;    // correct / passages
  void add(const PassageScore& s, int64_t target_tokens);
};

// Every passage, `batch` at a time (grouped by length); the result is summed
// in file order. progress (if set) is called after each batch with the
// passages done and the running score.
LambadaScore evaluate_lambada(Rwkv4Model& model, const std::vector<LambadaPassage>& passages, int32_t bos,
                              int64_t batch = 1,
                              const std::function<void(int64_t done, const LambadaScore&)>& progress = {});

}  // namespace rwkv
