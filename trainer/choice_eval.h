// Multiple-choice evaluation (PIQA, HellaSwag, ARC, Winogrande, ... in one
// JSON-lines form), scored as lm-evaluation-harness scores its zero-shot
// multiple-choice tasks, which the RWKV papers report:
//
//   {"context": "The sky is", "choices": [" blue.", " green."], "label": 0}
//
// For each choice the model reads [eod] + context + choice and sums the
// log-probability of the choice's tokens (Rwkv4Model's scored-rows forward,
// as LAMBADA's targets):
//
//   acc      = share of questions whose most likely choice is the label
//   acc_norm = the same with each choice's log-likelihood divided by its
//              length in UTF-8 bytes (lm-eval's length normalisation, which
//              keeps long choices from losing for their length alone)
//
// Ties go to the first choice. A task's own prompt format (lm-eval's
// "Question: ... Answer:") belongs in "context"; choices carry their
// leading space.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

struct ChoiceQuestion {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> choices;  // tokens of each choice
  std::vector<int64_t> choice_bytes;          // UTF-8 bytes of each choice (acc_norm)
  int64_t label = 0;                          // index of the right choice
  std::string position;                       // "file:line", for messages
};

// The questions of a JSON-lines file (.jsonl or .jsonl.zst), the first
// `limit` of them (0: all). A line without a string "context", with fewer
// than two "choices", a choice that encodes to no tokens, or a "label" that
// is not the index of a choice is an error naming its file and line.
std::vector<ChoiceQuestion> read_choice_questions(const std::string& path, const data::Tokenizer& tokenizer,
                                                  int64_t limit = 0);

struct ChoiceScore {
  int64_t questions = 0;
  int64_t correct = 0;       // argmax of log-likelihood is the label
  int64_t correct_norm = 0;  // argmax of log-likelihood per byte is the label
  double accuracy() const;
  double accuracy_norm() const;
};

// Which choice wins: the largest score (ties: the first).
int64_t best_choice(const std::vector<double>& scores);

// Every (question, choice) pair through the model, `batch` pairs a forward
// (grouped by length). progress (if set) gets the questions whose every
// choice is scored and the running score.
ChoiceScore evaluate_choices(Rwkv4Model& model, const std::vector<ChoiceQuestion>& questions, int32_t bos,
                             int64_t batch = 1,
                             const std::function<void(int64_t done, const ChoiceScore&)>& progress = {});

}  // namespace rwkv
