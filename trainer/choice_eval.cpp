#include "trainer/choice_eval.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/text_sources.h"
#include "trainer/lambada_eval.h"

namespace rwkv {

std::vector<ChoiceQuestion> read_choice_questions(const std::string& path, const data::Tokenizer& tokenizer,
                                                  int64_t limit) {
  std::vector<data::InputFile> inputs = data::resolve_inputs({path});
  RWKV_CHECK(inputs.size() == 1 && (inputs[0].format == data::InputFormat::Jsonl || inputs[0].format == data::InputFormat::JsonlZst),
             path, ": multiple-choice questions are read from one JSON-lines file (.jsonl or .jsonl.zst), one "
             "{\"context\": ..., \"choices\": [...], \"label\": N} per line");
  data::RecordReader reader(inputs);
  std::vector<ChoiceQuestion> out;
  data::RawRecord record;
  const char* hint = "\n  ---> HINT: each line is {\"context\": \"...\", \"choices\": [\" a\", \" b\"], \"label\": 0}";
  while ((limit <= 0 || static_cast<int64_t>(out.size()) < limit) && reader.next(record)) {
    ChoiceQuestion q;
    q.position = data::record_position(record, reader.inputs());
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(record.payload);
    } catch (const nlohmann::json::exception& e) {
      throw Error(str_cat(q.position, ": not valid JSON (", e.what(), ")", hint));
    }
    RWKV_CHECK(line.is_object() && line.contains("context") && line["context"].is_string(), q.position,
               ": needs a string \"context\"", hint);
    RWKV_CHECK(line.contains("choices") && line["choices"].is_array() && line["choices"].size() >= 2, q.position,
               ": needs \"choices\", an array of two or more strings", hint);
    RWKV_CHECK(line.contains("label") && line["label"].is_number_integer(), q.position,
               ": needs an integer \"label\" (the index of the right choice)", hint);
    q.context = tokenizer.encode(line["context"].get<std::string>());
    for (const nlohmann::json& choice : line["choices"]) {
      RWKV_CHECK(choice.is_string(), q.position, ": choice ", q.choices.size(), " is not a string", hint);
      const std::string text = choice.get<std::string>();
      q.choices.push_back(tokenizer.encode(text));
      RWKV_CHECK(!q.choices.back().empty(), q.position, ": choice ", q.choices.size() - 1, " encodes to no tokens with ",
                 tokenizer.name());
      q.choice_bytes.push_back(static_cast<int64_t>(text.size()));
    }
    q.label = line["label"].get<int64_t>();
    RWKV_CHECK(q.label >= 0 && q.label < static_cast<int64_t>(q.choices.size()), q.position, ": label ", q.label,
               " is not the index of one of its ", q.choices.size(), " choices (0-based)");
    out.push_back(std::move(q));
  }
  RWKV_CHECK(!out.empty(), path, ": no questions", hint);
  return out;
}

double ChoiceScore::accuracy() const {
  return questions > 0 ? static_cast<double>(correct) / static_cast<double>(questions) : 0.0;
}

double ChoiceScore::accuracy_norm() const {
  return questions > 0 ? static_cast<double>(correct_norm) / static_cast<double>(questions) : 0.0;
}

int64_t best_choice(const std::vector<double>& scores) {
  int64_t best = 0;
  for (size_t i = 1; i < scores.size(); ++i)
    if (scores[i] > scores[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  return best;
}

ChoiceScore evaluate_choices(Rwkv4Model& model, const std::vector<ChoiceQuestion>& questions, int32_t bos,
                             int64_t batch, const std::function<void(int64_t, const ChoiceScore&)>& progress) {
  RWKV_CHECK(batch >= 1, "evaluate_choices: batch must be >= 1, got ", batch);
  // One passage per (question, choice): the choice is the target, as
  // LAMBADA's last word is.
  std::vector<LambadaPassage> pairs;
  std::vector<size_t> question_of;  // [pairs]
  for (size_t q = 0; q < questions.size(); ++q)
    for (const std::vector<int32_t>& choice : questions[q].choices) {
      pairs.push_back({questions[q].context, choice, questions[q].position});
      question_of.push_back(q);
    }
  std::vector<size_t> first_pair(questions.size()), pending(questions.size());
  for (size_t p = pairs.size(); p-- > 0;) first_pair[question_of[p]] = p;
  for (size_t q = 0; q < questions.size(); ++q) pending[q] = questions[q].choices.size();
  ChoiceScore running;
  // Adds question q's verdicts to `score` from its pairs' scores.
  auto judge = [&](size_t q, const std::vector<PassageScore>& scores, ChoiceScore& score) {
    const ChoiceQuestion& question = questions[q];
    std::vector<double> loglik, per_byte;
    for (size_t c = 0; c < question.choices.size(); ++c) {
      const double ll = -scores[first_pair[q] + c].nll;
      loglik.push_back(ll);
      per_byte.push_back(ll / static_cast<double>(question.choice_bytes[c]));
    }
    ++score.questions;
    score.correct += best_choice(loglik) == question.label ? 1 : 0;
    score.correct_norm += best_choice(per_byte) == question.label ? 1 : 0;
  };
  const std::vector<PassageScore> scores = score_passages_batched(
      model, pairs, bos, batch, [&](const std::vector<size_t>& done, const std::vector<PassageScore>& so_far) {
        for (size_t p : done)
          if (--pending[question_of[p]] == 0) judge(question_of[p], so_far, running);
        if (progress) progress(running.questions, running);
      });
  ChoiceScore total;  // in file order: independent of batch and grouping
  for (size_t q = 0; q < questions.size(); ++q) judge(q, scores, total);
  return total;
}

}  // namespace rwkv
