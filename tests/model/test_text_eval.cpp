// Perplexity on text (trainer/text_eval.h) and rwkv-eval --text: the windows
// a document is cut into, the loss against log-softmax of the model's own
// logits in double, batch independence, bits per byte by its definition, and
// the binary's printed result and errors.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "model_test_util.h"
#include "trainer/text_eval.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

using test::write_lines;

TEST(TextEval, DocumentsAreCutIntoWindowsOfCtxLenPredictions) {
  const fs::path dir = test::fresh_temp_dir("rwkv_text_windows");
  write_lines(dir / "d.jsonl", {R"({"text": "abcdefghij"})", R"({"text": ""})", R"({"text": "xy"})", R"({"text": "z"})"});
  const auto bytes = data::load_tokenizer("bytes");
  const int32_t eod = bytes->eod_id();
  const TextWindows t = read_text_windows({(dir / "d.jsonl").string()}, *bytes, 4);
  EXPECT_EQ(t.documents, 3);  // the empty one has nothing to predict
  EXPECT_EQ(t.bytes, 13);
  auto ids = [&](const std::string& s) { return bytes->encode(s); };
  auto with_eod = [&](const std::string& s) {
    std::vector<int32_t> v = {eod};
    for (int32_t id : ids(s)) v.push_back(id);
    return v;
  };
  // [eod] a b c d | d e f g h | h i j: each window reads its first token only.
  const std::vector<std::vector<int32_t>> want = {with_eod("abcd"), ids("defgh"), ids("hij"), with_eod("xy"), with_eod("z")};
  EXPECT_EQ(t.windows, want);
  EXPECT_EQ(read_text_windows({(dir / "d.jsonl").string()}, *bytes, 4, 1).documents, 1);
  test::expect_error([&] { read_text_windows({(dir / "d.jsonl").string()}, *bytes, 0); }, {"--ctx-len", ">= 1"});
  write_lines(dir / "empty.jsonl", {R"({"text": ""})"});
  test::expect_error([&] { read_text_windows({(dir / "empty.jsonl").string()}, *bytes, 4); }, {"empty.jsonl", "no text"});
}

// The loss by its definition: each window's logits from the model, their
// log-softmax in double at every target, summed; any batch size agrees.
TEST(TextEval, LossIsTheMeanNegativeLogLikelihoodOfEveryPredictedToken) {
  const fs::path dir = test::fresh_temp_dir("rwkv_text_loss");
  write_lines(dir / "d.txt", {"The quick brown fox jumps over the lazy dog, twice over."});
  write_lines(dir / "e.jsonl", {R"({"text": "short"})", R"({"text": "a second, longer document of text"})"});
  const auto bytes = data::load_tokenizer("bytes");
  const TextWindows text = read_text_windows({(dir / "d.txt").string(), (dir / "e.jsonl").string()}, *bytes, 8);
  Rwkv4Model model(Rwkv4Shape{2, 16, 257, 32}, DType::F32);
  test::fill_random(model.params(), 51, -0.5, 0.5);
  double nll = 0;
  int64_t predicted = 0;
  const int64_t V = 257;
  for (const std::vector<int32_t>& w : text.windows) {
    const int64_t T = static_cast<int64_t>(w.size()) - 1;
    Tensor logits = Tensor::empty({1, T, V}, DType::F32);
    model.forward_logits(Tensor::from_vector<int32_t>(std::vector<int32_t>(w.begin(), w.end() - 1), {1, T}), logits);
    const std::vector<float> l = logits.to_vector<float>();
    for (int64_t t = 0; t < T; ++t) {
      const float* row = l.data() + t * V;
      double top = row[0], sum = 0;
      for (int64_t v = 0; v < V; ++v) top = std::max(top, static_cast<double>(row[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - top);
      nll += std::log(sum) - (row[w[static_cast<size_t>(t) + 1]] - top);
      ++predicted;
    }
  }
  for (int64_t batch : {1, 2, 8}) {
    SCOPED_TRACE(str_cat("batch ", batch));
    int64_t last = 0;
    const TextScore s = evaluate_text(model, text, batch, [&](int64_t done, const TextScore&) { last = done; });
    EXPECT_EQ(last, static_cast<int64_t>(text.windows.size()));
    EXPECT_EQ(s.tokens, predicted);
    EXPECT_EQ(s.documents, 3);
    EXPECT_EQ(s.bytes, text.bytes);
    EXPECT_NEAR(s.nll_sum, nll, 1e-5 * nll);
    EXPECT_DOUBLE_EQ(s.loss(), s.nll_sum / static_cast<double>(predicted));
    EXPECT_DOUBLE_EQ(s.perplexity(), std::exp(s.loss()));
    EXPECT_DOUBLE_EQ(s.bits_per_byte(), s.nll_sum / std::log(2.0) / static_cast<double>(text.bytes));
  }
}

// The per-position losses the padded batches are masked with: their mean is
// forward_loss, and a row's losses do not depend on what pads the others.
TEST(TextEval, TokenLossesAverageToTheLossAndIgnoreOtherRows) {
  Rwkv4Model model(Rwkv4Shape{2, 16, 257, 32}, DType::F32);
  test::fill_random(model.params(), 53, -0.5, 0.5);
  const Tensor tokens = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  const Tensor targets = Tensor::from_vector<int32_t>({2, 3, 4, 5, 6, 7, 8, 9}, {2, 4});
  const std::vector<double> losses = model.forward_token_losses(tokens, targets);
  ASSERT_EQ(losses.size(), 8u);
  double sum = 0;
  for (double l : losses) sum += l;
  EXPECT_NEAR(sum / 8, model.forward_loss(tokens, targets), 1e-6);
  const Tensor other = Tensor::from_vector<int32_t>({1, 2, 3, 4, 0, 0, 0, 0}, {2, 4});
  const std::vector<double> padded = model.forward_token_losses(other, targets);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(padded[i], losses[i], 1e-6 * losses[i]) << i;
}

TEST(TextEval, RwkvEvalPrintsLossAndBitsPerByte) {
  const fs::path dir = test::fresh_temp_dir("rwkv_text_cli");
  Rwkv4Model model(Rwkv4Shape{2, 16, 257, 32}, DType::F32);
  test::fill_random(model.params(), 52, -0.5, 0.5);
  const std::string weights = (dir / "w.safetensors").string();
  test::write_weights(model, weights);
  write_lines(dir / "a.txt", {"first document"});
  write_lines(dir / "b.txt", {"and a second one"});
  const auto bytes = data::load_tokenizer("bytes");
  const std::string a = (dir / "a.txt").string(), b = (dir / "b.txt").string();
  const TextScore want = evaluate_text(model, read_text_windows({a, b}, *bytes, 5));
  const std::string bin = RWKV_EVAL_BIN;
  const test::CommandResult r =
      test::run_command(bin + " --weights " + weights + " --tokenizer bytes --text " + a + "," + b + " --ctx-len 5 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(str_cat("\"documents\": 2, \"tokens\": ", want.tokens, ", \"bytes\": ", want.bytes)),
            std::string::npos)
      << r.output;
  const size_t at = r.output.find("\"loss\": ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NEAR(std::stod(r.output.substr(at + 8)), want.loss(), 1e-5 * want.loss()) << r.output;
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --text " + a + " --ctx-len 0", "--ctx-len expects a length >= 1"},
           {" --lambada " + a + " --ctx-len 5", "--ctx-len applies to --text only"},
           {" --text " + (dir / "none.txt").string(), "none.txt"}}) {
    SCOPED_TRACE(args);
    const test::CommandResult bad = test::run_command(bin + " --weights " + weights + " --tokenizer bytes" + args);
    EXPECT_EQ(bad.exit_code, 1) << bad.output;
    EXPECT_NE(bad.output.find(message), std::string::npos) << bad.output;
  }
}

}  // namespace
}  // namespace rwkv
