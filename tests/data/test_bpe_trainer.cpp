// A trained byte-level BPE loads as a tokenizer.json, round-trips, compresses,
// and training is deterministic.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/bpe_tokenizer.h"
#include "data/bpe_trainer.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

std::vector<std::string> lambada_texts() {
  std::vector<std::string> texts;
  for (const std::string& line : testing::read_lines(testing::shared_data("lambada_test.jsonl"))) {
    if (!line.empty()) texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return texts;
}

std::string train_on(const std::vector<std::string>& texts, size_t count, int64_t vocab_size) {
  BpeTrainer trainer({vocab_size, 2});
  for (size_t i = 0; i < count && i < texts.size(); ++i) trainer.add_text(texts[i]);
  return trainer.train();
}

TEST(BpeTrainer, TrainedTokenizerLoadsRoundTripsAndCompresses) {
  std::vector<std::string> texts = lambada_texts();
  std::string json = train_on(texts, 800, 1000);
  HfBpeTokenizer tokenizer(json, "trained.json");
  EXPECT_EQ(tokenizer.vocab_size(), 1000);
  EXPECT_EQ(tokenizer.eod_id(), 0);
  EXPECT_EQ(tokenizer.num_merges(), 1000u - 257u);

  size_t bytes = 0, tokens = 0;
  for (const std::string& text : texts) {  // held-out passages included
    std::vector<int32_t> ids = tokenizer.encode(text);
    ASSERT_EQ(tokenizer.decode(ids), text);
    for (int32_t id : ids) ASSERT_LT(id, 1000);
    bytes += text.size();
    tokens += ids.size();
  }
  EXPECT_LT(static_cast<double>(tokens), 0.45 * static_cast<double>(bytes));
  for (std::string hard : {std::string("日本語 😀 👨‍👩‍👧 ﬁ"), std::string("  \t\n  x"), std::string("<|endoftext|>")}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(hard)), hard);
  }
  EXPECT_EQ(tokenizer.encode("<|endoftext|>"), std::vector<int32_t>{0});
}

TEST(BpeTrainer, WritesHuggingFaceLayout) {
  std::string json = train_on(lambada_texts(), 100, 300);
  nlohmann::json root = nlohmann::json::parse(json);
  EXPECT_EQ(root["model"]["type"], "BPE");
  EXPECT_EQ(root["normalizer"]["type"], "NFC");
  EXPECT_EQ(root["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(root["decoder"]["type"], "ByteLevel");
  EXPECT_EQ(root["added_tokens"][0]["content"], "<|endoftext|>");
  EXPECT_EQ(root["added_tokens"][0]["id"], 0);
  EXPECT_EQ(root["model"]["vocab"]["\xC4\xA0"], 1 + ' ');  // byte 0x20 is "Ġ", id 1 + 32
  EXPECT_EQ(root["model"]["merges"].size(), 300u - 257u);
  EXPECT_TRUE(root["model"]["merges"][0].is_string());
}

TEST(BpeTrainer, DeterministicAcrossRuns) {
  std::vector<std::string> texts = lambada_texts();
  EXPECT_EQ(train_on(texts, 200, 600), train_on(texts, 200, 600));
}

TEST(BpeTrainer, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainer trainer({5000, 2});
  trainer.add_text("abc abc");
  HfBpeTokenizer tokenizer(trainer.train(), "tiny.json");
  EXPECT_LT(tokenizer.vocab_size(), 5000);
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("abc abd")), "abc abd");
}

}  // namespace
}  // namespace rwkv::data
