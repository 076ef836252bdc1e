// LAMBADA scoring (trainer/lambada_eval.h) and rwkv-eval: the passage split,
// the per-passage negative log-likelihood and greedy correctness against
// closed forms and against the model's recurrent form, the perplexity and
// accuracy formulas, and one clear error per bad input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "checkpoint/safetensors.h"
#include "core/device.h"
#include "model_test_util.h"
#include "trainer/lambada_eval.h"
#include "trainer/rwkv4_recurrent.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

using test::write_lines;

// A small random model whose logits vary from token to token.
void fill_random(Rwkv4Model& model, uint64_t seed) { test::fill_random(model.params(), seed, -0.5, 0.5); }

TEST(Lambada, PassagesAreCutAtTheLastSpace) {
  const fs::path dir = test::fresh_temp_dir("rwkv_lambada_read");
  write_lines(dir / "l.jsonl", {R"({"text": "the cat sat on the mat"})", R"({"text": "He said \"no\"\n\nto   her"})", "",
                                R"({"text": "one two"})"});
  const auto bytes = data::load_tokenizer("bytes");
  const std::vector<LambadaPassage> all = read_lambada((dir / "l.jsonl").string(), *bytes);
  ASSERT_EQ(all.size(), 3u);  // the blank line is skipped
  EXPECT_EQ(all[0].context, bytes->encode("the cat sat on the"));
  EXPECT_EQ(all[0].target, bytes->encode(" mat"));
  EXPECT_EQ(all[1].context, bytes->encode("He said \"no\"\n\nto  "));  // only the last space goes to the target
  EXPECT_EQ(all[1].target, bytes->encode(" her"));
  EXPECT_EQ(all[0].position, (dir / "l.jsonl").string() + ":1");
  EXPECT_EQ(all[2].position, (dir / "l.jsonl").string() + ":4");
  EXPECT_EQ(read_lambada((dir / "l.jsonl").string(), *bytes, 2).size(), 2u);
  fs::remove_all(dir);
}

TEST(Lambada, BadPassagesAndFilesAreClearErrors) {
  const fs::path dir = test::fresh_temp_dir("rwkv_lambada_bad");
  const auto bytes = data::load_tokenizer("bytes");
  const std::string file = (dir / "l.jsonl").string();
  write_lines(file, {R"({"text": "fine passage"})", R"({"text": "nospace"})"});
  test::expect_error([&] { read_lambada(file, *bytes); }, {"l.jsonl:2", "no space"});
  write_lines(file, {R"({"text": "trailing space "})"});
  test::expect_error([&] { read_lambada(file, *bytes); }, {"l.jsonl:1", "nothing on one side of its last space"});
  write_lines(file, {R"({"passage": "a b"})"});
  test::expect_error([&] { read_lambada(file, *bytes); }, {"l.jsonl:1", "text"});
  write_lines(file, {R"({"text": "a b")"});
  test::expect_error([&] { read_lambada(file, *bytes); }, {"l.jsonl:1"});
  write_lines(file, {});
  test::expect_error([&] { read_lambada(file, *bytes); }, {"l.jsonl", "no passages"});
  write_lines(dir / "l.txt", {"a b"});
  test::expect_error([&] { read_lambada((dir / "l.txt").string(), *bytes); }, {"l.txt", "JSON-lines"});
  test::expect_error([&] { read_lambada((dir / "missing.jsonl").string(), *bytes); }, {"missing.jsonl"});
  fs::remove_all(dir);
}

TEST(Lambada, ScoreOfAModelThatAlwaysPredictsOneTokenHasAClosedForm) {
  // ln_out.weight = 0 and ln_out.bias = 1 make the head's input all ones,
  // whatever the blocks compute; head row X = a / C and the others 0 give
  // logits a for X and 0 elsewhere at every position: -log p(X) =
  // log(e^a + V - 1) - a, -log p(other) = log(e^a + V - 1), greedy picks X.
  const Rwkv4Shape shape{2, 16, 37, 32};
  Rwkv4Model model(shape, DType::F32);
  fill_random(model, 3);
  const int32_t X = 11;
  const double a = 3.0;
  for (NamedTensor& e : model.params().entries()) {
    if (e.name == "ln_out.weight") e.value.zero_();
    if (e.name == "ln_out.bias") std::fill_n(e.value.data<float>(), e.value.numel(), 1.0f);
    if (e.name == "head.weight") {
      e.value.zero_();
      for (int64_t c = 0; c < shape.n_embd; ++c) e.value.data<float>()[X * shape.n_embd + c] = static_cast<float>(a / 16);
    }
  }
  const double log_z = std::log(std::exp(a) + shape.vocab_size - 1);
  LambadaPassage hit{{5, 6, 7}, {X, X}, "p:1"};
  const PassageScore s1 = score_passage(model, hit, 0);
  EXPECT_TRUE(s1.correct);
  EXPECT_NEAR(s1.nll, 2 * (log_z - a), 1e-5);
  LambadaPassage miss{{5}, {X, 4, X}, "p:2"};
  const PassageScore s2 = score_passage(model, miss, 0);
  EXPECT_FALSE(s2.correct);
  EXPECT_NEAR(s2.nll, 2 * (log_z - a) + log_z, 1e-5);
  // perplexity = exp(mean over passages of the nll); accuracy = share correct.
  const LambadaScore total = evaluate_lambada(model, {hit, miss}, 0);
  EXPECT_EQ(total.passages, 2);
  EXPECT_EQ(total.target_tokens, 5);
  EXPECT_EQ(total.correct, 1);
  EXPECT_DOUBLE_EQ(total.accuracy(), 0.5);
  EXPECT_NEAR(total.perplexity(), std::exp((s1.nll + s2.nll) / 2), 1e-9);
  // Both in one forward: miss is padded to hit's length, which changes nothing.
  const std::vector<PassageScore> both = score_passages(model, {&hit, &miss}, 0);
  EXPECT_TRUE(both[0].correct);
  EXPECT_FALSE(both[1].correct);
  EXPECT_NEAR(both[0].nll, 2 * (log_z - a), 1e-5);
  EXPECT_NEAR(both[1].nll, 2 * (log_z - a) + log_z, 1e-5);
}

TEST(Lambada, BatchedPassagesScoreAsOneAtATime) {
  // Right padding is never read by a causal model, and rows do not mix: a
  // batch of passages of different lengths scores each as alone.
  const Rwkv4Shape shape{2, 16, 257, 32};
  Rwkv4Model model(shape, DType::F32);
  fill_random(model, 23);
  const auto bytes = data::load_tokenizer("bytes");
  std::vector<LambadaPassage> passages;
  for (const std::string text : {"a b", "the cat sat on the mat", "one two three four five six seven", "x yz",
                                 "Numbers 1 2 3 and then four", "short one"}) {
    const size_t cut = text.find_last_of(' ');
    passages.push_back({bytes->encode(text.substr(0, cut)), bytes->encode(text.substr(cut)), text});
  }
  std::vector<const LambadaPassage*> all;
  for (const LambadaPassage& p : passages) all.push_back(&p);
  const std::vector<PassageScore> batched = score_passages(model, all, bytes->eod_id());
  for (size_t i = 0; i < passages.size(); ++i) {
    const PassageScore alone = score_passage(model, passages[i], bytes->eod_id());
    EXPECT_NEAR(batched[i].nll, alone.nll, 1e-5 * alone.nll) << passages[i].position;
    EXPECT_EQ(batched[i].correct, alone.correct) << passages[i].position;
  }
  const LambadaScore one = evaluate_lambada(model, passages, bytes->eod_id(), 1);
  for (int64_t batch : {2, 4, 8}) {
    int64_t calls = 0, last_done = 0;
    const LambadaScore got = evaluate_lambada(model, passages, bytes->eod_id(), batch, [&](int64_t done, const LambadaScore&) {
      ++calls;
      EXPECT_GT(done, last_done);
      last_done = done;
    });
    EXPECT_EQ(calls, (6 + batch - 1) / batch) << "progress once per batch";
    EXPECT_EQ(last_done, 6);
    EXPECT_EQ(got.passages, one.passages);
    EXPECT_EQ(got.target_tokens, one.target_tokens);
    EXPECT_EQ(got.correct, one.correct);
    EXPECT_NEAR(got.nll_sum, one.nll_sum, 1e-5 * one.nll_sum) << "batch " << batch;
  }
  test::expect_error([&] { evaluate_lambada(model, passages, bytes->eod_id(), 0); }, {"batch must be >= 1"});
}

TEST(Lambada, NllAndGreedyMatchTheRecurrentForm) {
  // The sequence form (what score_passage runs) against the RNN form fed the
  // same tokens, with the log-softmax and argmax done here.
  const Rwkv4Shape shape{2, 16, 257, 32};
  Rwkv4Model model(shape, DType::F32);
  fill_random(model, 17);
  const auto bytes = data::load_tokenizer("bytes");
  for (const std::string text : {"a short passage ends here", "x y", "Numbers 1 2 3 and then four"}) {
    SCOPED_TRACE(text);
    const size_t cut = text.find_last_of(' ');
    const LambadaPassage p{bytes->encode(text.substr(0, cut)), bytes->encode(text.substr(cut)), "p"};
    std::vector<int32_t> tokens{bytes->eod_id()};
    tokens.insert(tokens.end(), p.context.begin(), p.context.end());
    tokens.insert(tokens.end(), p.target.begin(), p.target.end() - 1);
    const int64_t T = static_cast<int64_t>(tokens.size()), V = shape.vocab_size;
    Rwkv4State state = Rwkv4State::fresh(shape, 1, DType::F32);
    Tensor logits = Tensor::empty({1, T, V}, DType::F32);
    rwkv4_forward_recurrent(model.tensors(), shape, Tensor::from_vector<int32_t>(tokens, {1, T}), state, logits);
    double nll = 0;
    bool correct = true;
    for (size_t j = 0; j < p.target.size(); ++j) {
      const float* row = logits.data<float>() + (static_cast<int64_t>(p.context.size() + j)) * V;
      double z = 0;
      int64_t best = 0;
      for (int64_t v = 0; v < V; ++v) {
        z += std::exp(static_cast<double>(row[v]));
        if (row[v] > row[best]) best = v;
      }
      nll += std::log(z) - row[p.target[j]];
      correct = correct && best == p.target[j];
    }
    const PassageScore got = score_passage(model, p, bytes->eod_id());
    EXPECT_NEAR(got.nll, nll, 1e-4 * nll);
    EXPECT_EQ(got.correct, correct);
    EXPECT_GT(got.nll, 0.0);
  }
}

// rwkv-eval end to end: weights written as rwkv-train writes them, a LAMBADA
// file, the printed result equal to evaluate_lambada's; bad flags and files
// fail with one line and a non-zero exit.
std::string run(const std::string& command, int* status) {
  const test::CommandResult r = test::run_command(command);
  *status = r.exit_code;
  return r.output;
}

TEST(Lambada, RwkvEvalPrintsTheScoreOfTheWeights) {
  const fs::path dir = test::fresh_temp_dir("rwkv_eval_cli");
  const Rwkv4Shape shape{2, 16, 257, 32};
  Rwkv4Model model(shape, DType::F32);
  fill_random(model, 29);
  const std::string weights = (dir / "w.safetensors").string(), lambada = (dir / "l.jsonl").string();
  test::write_weights(model, weights);
  write_lines(lambada, {R"({"text": "the cat sat on the mat"})", R"({"text": "one two three"})", R"({"text": "x y"})"});
  const auto bytes = data::load_tokenizer("bytes");
  const LambadaScore want = evaluate_lambada(model, read_lambada(lambada, *bytes, 2), bytes->eod_id());

  const std::string bin = RWKV_EVAL_BIN;
  int status = 0;
  const std::string out =
      run(bin + " --weights " + weights + " --tokenizer bytes --lambada " + lambada + " --limit 2 --json", &status);
  ASSERT_EQ(status, 0) << out;
  const size_t at = out.find("\"perplexity\": ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_NEAR(std::stod(out.substr(at + 14)), want.perplexity(), 1e-5 * want.perplexity()) << out;
  EXPECT_NE(out.find("\"passages\": 2,"), std::string::npos) << out;
  EXPECT_NE(out.find(str_cat("\"correct\": ", want.correct, "}")), std::string::npos) << out;
  const std::string table = run(bin + " --weights " + weights + " --tokenizer bytes --lambada " + lambada, &status);
  EXPECT_EQ(status, 0) << table;
  EXPECT_NE(table.find("lambada: 3 passages"), std::string::npos) << table;

  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--tokenizer bytes --lambada " + lambada, "--weights is required"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + lambada + " --limit x", "--limit expects an integer"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + lambada + " --bogus", "unknown flag --bogus"},
           {"--weights " + (dir / "none.safetensors").string() + " --tokenizer bytes --lambada " + lambada, "none.safetensors"},
           {"--weights " + lambada + " --tokenizer bytes --lambada " + lambada, "l.jsonl"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + (dir / "none.jsonl").string(), "none.jsonl"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + lambada + " --device gpu", "--device expects cpu or cuda"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + lambada + " --batch 0", "--batch expects a count >= 1"},
           {"--weights " + weights + " --tokenizer bytes --lambada " + lambada + " --precision bf16",
            "--precision bf16 needs --device cuda"}}) {
    const std::string err = run(bin + " " + args, &status);
    SCOPED_TRACE(args);
    EXPECT_NE(status, 0) << args;
    EXPECT_NE(err.find("rwkv-eval: error: "), std::string::npos) << err;
    EXPECT_NE(err.find(message), std::string::npos) << args << "\n" << err;
  }
  if (!cuda_available()) {  // asking for a GPU where there is none
    const std::string err = run(bin + " --weights " + weights + " --tokenizer bytes --lambada " + lambada + " --device cuda", &status);
    EXPECT_NE(status, 0);
    EXPECT_NE(err.find("--device cuda, but "), std::string::npos) << err;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
