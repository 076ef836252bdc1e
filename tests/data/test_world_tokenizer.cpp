// RWKV World: greedy longest match over bytes, round-trips LAMBADA.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/world_tokenizer.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

const WorldTokenizer& world() {
  static const WorldTokenizer tokenizer(testing::shared_data("rwkv_vocab_v20230424.txt"));
  return tokenizer;
}

TEST(WorldTokenizer, VocabularyFacts) {
  EXPECT_EQ(world().vocab_size(), 65530);  // ids 1..65529, 0 = end of document
  EXPECT_EQ(world().eod_id(), 0);
  EXPECT_EQ(world().decode(std::vector<int32_t>{1}), std::string(1, '\0'));
  EXPECT_EQ(world().decode(std::vector<int32_t>{11}), "\n");
  EXPECT_EQ(world().decode(std::vector<int32_t>{129}), "\x80");  // b'\x80'
  EXPECT_EQ(world().decode(std::vector<int32_t>{65529}), std::string(128, ' '));
}

TEST(WorldTokenizer, EveryTokenEncodesToItself) {
  // Greedy longest match: a string equal to a token is that one token (no
  // longer match can exist inside it).
  for (int32_t id = 1; id < world().vocab_size(); ++id) {
    std::string bytes = world().decode(std::vector<int32_t>{id});
    std::vector<int32_t> ids = world().encode(bytes);
    ASSERT_EQ(ids, std::vector<int32_t>{id}) << "token " << id;
  }
}

TEST(WorldTokenizer, GreedyLongestMatch) {
  // "\n\n" and a long run of spaces are single tokens; 129 spaces are 128 + 1.
  EXPECT_EQ(world().encode("\n\n").size(), 1u);
  std::vector<int32_t> spaces = world().encode(std::string(129, ' '));
  ASSERT_EQ(spaces.size(), 2u);
  EXPECT_EQ(spaces[0], 65529);
  EXPECT_EQ(spaces[1], 33);  // ' ' is id 33
}

TEST(WorldTokenizer, RoundTripsLambada) {
  int passages = 0;
  size_t bytes = 0, tokens = 0;
  for (const std::string& line : testing::read_lines(testing::shared_data("lambada_test.jsonl"))) {
    if (line.empty()) continue;
    std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    std::vector<int32_t> ids = world().encode(text);
    ASSERT_EQ(world().decode(ids), text) << "passage " << passages;
    bytes += text.size();
    tokens += ids.size();
    ++passages;
  }
  EXPECT_EQ(passages, 5153);
  EXPECT_LT(static_cast<double>(tokens), 0.3 * static_cast<double>(bytes));  // it compresses English
}

TEST(WorldTokenizer, RoundTripsArbitraryBytes) {
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  bytes += "日本語 😀 \xF0\x28\x8C\x28";  // invalid UTF-8 is fine for a byte vocabulary
  EXPECT_EQ(world().decode(world().encode(bytes)), bytes);
}

TEST(WorldTokenizer, PythonLiterals) {
  std::string bytes, error;
  ASSERT_TRUE(parse_python_literal("b'\\x80\\xff'", &bytes, &error));
  EXPECT_EQ(bytes, "\x80\xff");
  ASSERT_TRUE(parse_python_literal("'\\u00e9\\n\\t\\\\'", &bytes, &error));
  EXPECT_EQ(bytes, "\xC3\xA9\n\t\\");
  ASSERT_TRUE(parse_python_literal("\"'\"", &bytes, &error));
  EXPECT_EQ(bytes, "'");
  ASSERT_TRUE(parse_python_literal("'\\x80'", &bytes, &error));  // a str escape is a code point
  EXPECT_EQ(bytes, "\xC2\x80");
  EXPECT_FALSE(parse_python_literal("'abc", &bytes, &error));
  EXPECT_FALSE(parse_python_literal("'\\q'", &bytes, &error));
}

TEST(WorldTokenizer, MalformedVocabularyNamesTheLine) {
  try {
    WorldTokenizer tokenizer("1 'a' 1\n2 'bc 2\n", "vocab.txt");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.txt:2:"), std::string::npos) << e.what();
  }
  try {
    WorldTokenizer tokenizer("1 'a' 1\n2 'bc' 3\n", "vocab.txt");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.txt:2: the literal has 2 bytes but the line says 3"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace rwkv::data
