// Multiple-choice evaluation (trainer/choice_eval.h) and rwkv-eval --choices:
// the file form and its errors, acc and acc_norm against the definition
// computed pair by pair through score_passage, batch independence, ties, and
// the binary's printed result.
#include <filesystem>
#include <fstream>

#include "model_test_util.h"
#include "trainer/choice_eval.h"
#include "trainer/lambada_eval.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

using test::write_lines;

const std::vector<std::string> kQuestions = {
    R"({"context": "The sky is", "choices": [" blue.", " green, like grass in spring."], "label": 0})",
    R"({"context": "Fire is", "choices": [" cold", " hot", " wet"], "label": 1})",
    R"({"context": "Q: 2 + 2 = ?\nA:", "choices": [" 4", " 22", " four, of course"], "label": 2})",
    R"({"context": "Ice", "choices": [" melts in the sun", " sings"], "label": 0, "id": "extra keys are ignored"})",
    R"({"context": "", "choices": [" a", " b"], "label": 1})",
};

TEST(Choices, QuestionsAreReadWithTheirTokensBytesAndLabel) {
  const fs::path dir = test::fresh_temp_dir("rwkv_choices_read");
  write_lines(dir / "q.jsonl", kQuestions);
  const auto bytes = data::load_tokenizer("bytes");
  const std::vector<ChoiceQuestion> all = read_choice_questions((dir / "q.jsonl").string(), *bytes);
  ASSERT_EQ(all.size(), kQuestions.size());
  EXPECT_EQ(all[1].context, bytes->encode("Fire is"));
  ASSERT_EQ(all[1].choices.size(), 3u);
  EXPECT_EQ(all[1].choices[1], bytes->encode(" hot"));
  EXPECT_EQ(all[1].choice_bytes, (std::vector<int64_t>{5, 4, 4}));
  EXPECT_EQ(all[1].label, 1);
  EXPECT_EQ(all[2].context, bytes->encode("Q: 2 + 2 = ?\nA:"));
  EXPECT_TRUE(all[4].context.empty());  // a context may be empty: the model reads [eod] + choice
  EXPECT_EQ(all[3].position, (dir / "q.jsonl").string() + ":4");
  EXPECT_EQ(read_choice_questions((dir / "q.jsonl").string(), *bytes, 2).size(), 2u);
}

TEST(Choices, BadQuestionsAreClearErrorsNamingFileAndLine) {
  const fs::path dir = test::fresh_temp_dir("rwkv_choices_bad");
  const auto bytes = data::load_tokenizer("bytes");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"context": "x", "choices": [" a", " b"]})", "integer \"label\""},
      {R"({"choices": [" a", " b"], "label": 0})", "string \"context\""},
      {R"({"context": 3, "choices": [" a", " b"], "label": 0})", "string \"context\""},
      {R"({"context": "x", "choices": [" a"], "label": 0})", "two or more strings"},
      {R"({"context": "x", "choices": " a b", "label": 0})", "two or more strings"},
      {R"({"context": "x", "choices": [" a", 7], "label": 0})", "choice 1 is not a string"},
      {R"({"context": "x", "choices": [" a", ""], "label": 0})", "choice 1 encodes to no tokens"},
      {R"({"context": "x", "choices": [" a", " b"], "label": 2})", "label 2 is not the index of one of its 2 choices"},
      {R"({"context": "x", "choices": [" a", " b"], "label": -1})", "label -1"},
      {R"({"context": "x", "choices": [" a", " b"], "label": 0.5})", "integer \"label\""},
      {R"({"context": "x", "choices": [" a", " b"], "label": 0)", "not valid JSON"},
  };
  for (const auto& [line, message] : cases) {
    SCOPED_TRACE(line);
    write_lines(dir / "q.jsonl", {kQuestions[0], line});
    const std::string path = (dir / "q.jsonl").string();
    test::expect_error([&] { read_choice_questions(path, *bytes); }, {path + ":2", message});
  }
  write_lines(dir / "empty.jsonl", {""});
  test::expect_error([&] { read_choice_questions((dir / "empty.jsonl").string(), *bytes); }, {"empty.jsonl", "no questions"});
  write_lines(dir / "q.txt", {"plain text"});
  test::expect_error([&] { read_choice_questions((dir / "q.txt").string(), *bytes); }, {"q.txt", "JSON-lines"});
}

TEST(Choices, BestChoiceTakesTheLargestAndTheFirstOfATie) {
  EXPECT_EQ(best_choice({-3.0, -1.0, -2.0}), 1);
  EXPECT_EQ(best_choice({-1.0, -1.0}), 0);
  EXPECT_EQ(best_choice({-5.0, -2.0, -2.0}), 1);
}

// acc and acc_norm by their definition: each (context, choice) scored alone
// through score_passage, the argmax of log-likelihood (and of log-likelihood
// per byte) against the label; evaluate_choices gives the same counts at any
// batch size.
TEST(Choices, AccuracyAndNormalisedAccuracyFollowTheirDefinition) {
  const fs::path dir = test::fresh_temp_dir("rwkv_choices_score");
  write_lines(dir / "q.jsonl", kQuestions);
  const auto bytes = data::load_tokenizer("bytes");
  const std::vector<ChoiceQuestion> questions = read_choice_questions((dir / "q.jsonl").string(), *bytes);
  Rwkv4Model model(Rwkv4Shape{2, 16, 257, 32}, DType::F32);
  int64_t correct = 0, correct_norm = 0, disagree = 0;
  for (uint64_t seed : {31u, 32u, 33u}) {
    test::fill_random(model.params(), seed, -0.5, 0.5);
    int64_t want = 0, want_norm = 0;
    for (const ChoiceQuestion& q : questions) {
      int64_t best = -1, best_norm = -1;
      double top = 0, top_norm = 0;
      for (size_t c = 0; c < q.choices.size(); ++c) {
        const double ll = -score_passage(model, LambadaPassage{q.context, q.choices[c], q.position}, bytes->eod_id()).nll;
        const double per_byte = ll / static_cast<double>(q.choice_bytes[c]);
        if (best < 0 || ll > top) best = static_cast<int64_t>(c), top = ll;
        if (best_norm < 0 || per_byte > top_norm) best_norm = static_cast<int64_t>(c), top_norm = per_byte;
      }
      want += best == q.label ? 1 : 0;
      want_norm += best_norm == q.label ? 1 : 0;
      disagree += best != best_norm ? 1 : 0;
    }
    for (int64_t batch : {1, 3, 16}) {
      SCOPED_TRACE(str_cat("seed ", seed, ", batch ", batch));
      int64_t calls = 0, last_done = 0;
      const ChoiceScore got = evaluate_choices(model, questions, bytes->eod_id(), batch, [&](int64_t done, const ChoiceScore& s) {
        ++calls;
        EXPECT_GE(done, last_done);
        EXPECT_EQ(s.questions, done);
        last_done = done;
      });
      EXPECT_EQ(got.questions, static_cast<int64_t>(questions.size()));
      EXPECT_EQ(got.correct, want);
      EXPECT_EQ(got.correct_norm, want_norm);
      EXPECT_EQ(last_done, static_cast<int64_t>(questions.size()));
      EXPECT_EQ(calls, (12 + batch - 1) / batch);  // one call per forward: 12 (question, choice) pairs
      EXPECT_DOUBLE_EQ(got.accuracy(), static_cast<double>(want) / 5.0);
      EXPECT_DOUBLE_EQ(got.accuracy_norm(), static_cast<double>(want_norm) / 5.0);
    }
    correct += want;
    correct_norm += want_norm;
  }
  // The random models must exercise both verdicts, or the test could not
  // tell acc from acc_norm.
  EXPECT_GT(disagree, 0);
  EXPECT_GT(correct + correct_norm, 0);
}

TEST(Choices, RwkvEvalPrintsAccAndAccNorm) {
  const fs::path dir = test::fresh_temp_dir("rwkv_choices_cli");
  Rwkv4Model model(Rwkv4Shape{2, 16, 257, 32}, DType::F32);
  test::fill_random(model.params(), 41, -0.5, 0.5);
  const std::string weights = (dir / "w.safetensors").string(), questions = (dir / "q.jsonl").string();
  test::write_weights(model, weights);
  write_lines(questions, kQuestions);
  const auto bytes = data::load_tokenizer("bytes");
  const ChoiceScore want = evaluate_choices(model, read_choice_questions(questions, *bytes, 4), bytes->eod_id());
  const std::string bin = RWKV_EVAL_BIN;
  const test::CommandResult json =
      test::run_command(bin + " --weights " + weights + " --tokenizer bytes --choices " + questions + " --limit 4 --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find(str_cat("\"questions\": 4, ")), std::string::npos) << json.output;
  EXPECT_NE(json.output.find(str_cat("\"correct\": ", want.correct, ", \"correct_norm\": ", want.correct_norm, "}")),
            std::string::npos)
      << json.output;
  const test::CommandResult table = test::run_command(bin + " --weights " + weights + " --tokenizer bytes --choices " + questions);
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("choices: 5 questions: acc "), std::string::npos) << table.output;
  for (const std::string& args : {std::string(" --tokenizer bytes"), " --tokenizer bytes --lambada " + questions + " --choices " + questions}) {
    const test::CommandResult r = test::run_command(bin + " --weights " + weights + args);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("rwkv-eval: error: rwkv-eval scores one task: give --lambada FILE, --choices FILE or --text FILES"),
              std::string::npos)
        << r.output;
  }
}

}  // namespace
}  // namespace rwkv
