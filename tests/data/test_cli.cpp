// The rwkv-data tool end to end: what a user types and reads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/bpe_tokenizer.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::run_cli;
using testing::ScratchDir;

int count_lines_with(const std::string& text, const std::string& needle) {
  int count = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.substr(start, end - start).find(needle) != std::string::npos) ++count;
    start = end + 1;
  }
  return count;
}

TEST(Cli, PrepareInspectVerifyMagicPrime) {
  ScratchDir dir;
  std::string vocab = testing::shared_data("20B_tokenizer.json");
  auto prepared = run_cli("prepare --input '" + testing::shared_data("lambada_test.jsonl") + "' --output '" + (dir / "lam") +
                          "' --tokenizer '" + vocab + "' --threads 2 --progress-seconds 0.001 --ctx-len 512");
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  EXPECT_NE(prepared.output.find("documents=5153 tokens=423797"), std::string::npos) << prepared.output;
  EXPECT_NE(prepared.output.find("magic_prime=821 ctx_len=512"), std::string::npos) << prepared.output;
  // The progress line: documents, tokens, MB/s, ETA.
  EXPECT_GE(count_lines_with(prepared.output, "prepare: docs="), 1) << prepared.output;
  EXPECT_NE(prepared.output.find("rate="), std::string::npos);

  auto inspected = run_cli("inspect '" + (dir / "lam") + "' --tokenizer '" + vocab + "' --docs 1");
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_NE(inspected.output.find("dtype uint16 (code 8, 2 bytes)"), std::string::npos) << inspected.output;
  EXPECT_NE(inspected.output.find("sequences 5153, doc_idx entries 5154 (documents 5153), tokens 423797"),
            std::string::npos)
      << inspected.output;
  EXPECT_NE(inspected.output.find("text: \"In my palm is a clear stone"), std::string::npos) << inspected.output;

  auto verified = run_cli("verify '" + (dir / "lam") + "' --tokenizer '" + vocab + "'");
  ASSERT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("verified 1 shard(s): 5153 sequences, 423797 tokens, every id < 50277"),
            std::string::npos)
      << verified.output;

  auto prime = run_cli("magic-prime --data '" + (dir / "lam") + "' --ctx-len 512");
  ASSERT_EQ(prime.exit_code, 0) << prime.output;
  EXPECT_NE(prime.output.find("magic_prime=821 tokens=423797 ctx_len=512"), std::string::npos) << prime.output;
}

TEST(Cli, MagicPrimeMatchesRwkvLmsPublishedValues) {
  // Values from RWKV-LM's README and make_data.py output.
  auto minipile = run_cli("magic-prime --tokens 1498226207 --ctx-len 512");
  EXPECT_NE(minipile.output.find("magic_prime=2926181"), std::string::npos) << minipile.output;
  auto demo = run_cli("magic-prime --tokens 200499 --ctx-len 4096");
  EXPECT_NE(demo.output.find("--my_exit_tokens 200499 --magic_prime 47 --ctx_len 4096"), std::string::npos) << demo.output;
  auto too_small = run_cli("magic-prime --tokens 100 --ctx-len 512");
  EXPECT_EQ(too_small.exit_code, 1);
  EXPECT_NE(too_small.output.find("HINT"), std::string::npos);
}

TEST(Cli, BadInputGivesOneClearErrorLine) {
  ScratchDir dir;
  testing::write_text(dir / "bad.jsonl", "{\"text\": \"one\"}\n{\"text\": \"two\"}\n{\"text\" \"three\"}\n");
  auto result = run_cli("prepare --input '" + (dir / "bad.jsonl") + "' --output '" + (dir / "o") +
                        "' --tokenizer bytes --progress-seconds 0");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(count_lines_with(result.output, "error:"), 1) << result.output;
  EXPECT_NE(result.output.find("rwkv-data prepare: error: " + (dir / "bad.jsonl") + ":3: malformed JSON"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("---> HINT:"), std::string::npos);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"bad.jsonl"});  // nothing written

  auto unknown = run_cli("prepare --inptu x");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("unknown flag --inptu"), std::string::npos) << unknown.output;

  testing::write_text(dir / "bad.idx", "MMIDIDX");
  testing::write_text(dir / "bad.bin", "");
  auto damaged = run_cli("verify '" + (dir / "bad") + "'");
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_NE(damaged.output.find((dir / "bad.idx") + ": truncated header"), std::string::npos) << damaged.output;
}

TEST(Cli, VerifyCatchesTokensBeyondTheVocabulary) {
  ScratchDir dir;
  testing::write_text(dir / "t.txt", "hello");
  ASSERT_EQ(run_cli("prepare --input '" + (dir / "t.txt") + "' --output '" + (dir / "b") +
                    "' --tokenizer bytes --progress-seconds 0")
                .exit_code,
            0);
  auto result = run_cli("verify '" + (dir / "b") + "' --vocab-size 100");  // 'h' + 1 = 105
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find((dir / "b_00000.bin") + ": token 0 (byte 0) is 105, expected an integer token id in [0, 100)"),
            std::string::npos)
      << result.output;
}

TEST(Cli, TrainTokenizerWritesALoadableTokenizer) {
  ScratchDir dir;
  auto trained = run_cli("train-tokenizer --input '" + testing::shared_data("lambada_test.jsonl") + "' --output '" +
                         (dir / "tok.json") + "' --vocab-size 512");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("vocab_size=512 merges=255"), std::string::npos) << trained.output;
  HfBpeTokenizer tokenizer(dir / "tok.json");
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("A trained tokenizer, loaded back.")), "A trained tokenizer, loaded back.");
  auto prepared = run_cli("prepare --input '" + testing::shared_data("lambada_test.jsonl") + "' --output '" + (dir / "p") +
                          "' --tokenizer '" + (dir / "tok.json") + "' --progress-seconds 0");
  EXPECT_EQ(prepared.exit_code, 0) << prepared.output;
}

}  // namespace
}  // namespace rwkv::data
