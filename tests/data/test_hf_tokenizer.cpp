// GPT-NeoX-20B: our encoder against Hugging Face's own ids (tests/data/golden,
// made by scripts/data/make_tokenizer_golden.mjs with the `tokenizers` npm
// package, i.e. Hugging Face's Rust library), and decode against its decode.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/bpe_tokenizer.h"
#include "data/pretokenizer.h"
#include "data/zstd_reader.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

const HfBpeTokenizer& neox() {
  static const HfBpeTokenizer tokenizer(testing::shared_data("20B_tokenizer.json"));
  return tokenizer;
}

std::string golden_path() { return std::string(RWKV_REPO_DIR) + "/tests/data/golden/neox20b_golden.jsonl.zst"; }

TEST(HfTokenizer, VocabularyFacts) {
  EXPECT_EQ(neox().vocab_size(), 50277);
  EXPECT_EQ(neox().eod_id(), 0);
  EXPECT_EQ(neox().num_merges(), 50009u);
  EXPECT_EQ(neox().token_to_id("\xC4\xA0the"), 253);  // "Ġthe"
  EXPECT_EQ(neox().decode(std::vector<int32_t>{0}), "<|endoftext|>");
  EXPECT_EQ(neox().decode(std::vector<int32_t>{50276}), "  ");  // the shortest run-of-spaces added token
}

TEST(HfTokenizer, WellKnownIds) {
  EXPECT_EQ(neox().encode("\nThe following is a"), (std::vector<int32_t>{187, 510, 1563, 310, 247}));
  EXPECT_EQ(neox().encode("Hello world"), (std::vector<int32_t>{12092, 1533}));
  EXPECT_EQ(neox().encode("    x"), (std::vector<int32_t>{50274, 89}));  // 4 spaces are one added token
}

TEST(HfTokenizer, MatchesHuggingFaceOnEveryGoldenRecord) {
  LineReader lines(open_zstd_source(golden_path()));
  std::string line;
  ASSERT_TRUE(lines.next(line));
  nlohmann::json header = nlohmann::json::parse(line).at("header");
  EXPECT_GE(header.at("lambada_passages").get<int>(), 1000);
  EXPECT_GE(header.at("hard_strings").get<int>(), 200);
  int records = 0, encode_mismatches = 0, decode_mismatches = 0;
  size_t total_ids = 0;
  while (lines.next(line)) {
    nlohmann::json record = nlohmann::json::parse(line);
    std::string text = record.at("text").get<std::string>();
    std::vector<int32_t> expected = record.at("ids").get<std::vector<int32_t>>();
    std::vector<int32_t> got = neox().encode(text);
    if (got != expected && ++encode_mismatches <= 5) {
      ADD_FAILURE() << "encode differs from Hugging Face for " << nlohmann::json(text).dump() << "\n  expected "
                    << nlohmann::json(expected).dump() << "\n  got      " << nlohmann::json(got).dump();
    }
    std::string decoded = neox().decode(expected);
    if (decoded != record.at("decoded").get<std::string>() && ++decode_mismatches <= 5) {
      ADD_FAILURE() << "decode differs from Hugging Face for " << nlohmann::json(text).dump();
    }
    total_ids += expected.size();
    ++records;
  }
  EXPECT_EQ(records, header.at("lambada_passages").get<int>() + header.at("hard_strings").get<int>());
  EXPECT_EQ(encode_mismatches, 0);
  EXPECT_EQ(decode_mismatches, 0);
  EXPECT_GT(total_ids, 100000u);
}

TEST(HfTokenizer, DecodeRestoresNfcText) {
  // Decode inverts encode up to NFC: the normalizer composes e + U+0301.
  for (std::string text : {std::string("plain ascii, with  spaces\tand\ttabs\n"), std::string("日本語 😀 👨‍👩‍👧"),
                           std::string("Ä ä ﬁ ∀x∈ℝ"), std::string("<|endoftext|> mid <|padding|>")}) {
    EXPECT_EQ(neox().decode(neox().encode(text)), text);
  }
  EXPECT_EQ(neox().decode(neox().encode("cafe\xCC\x81")), "caf\xC3\xA9");
}

TEST(HfTokenizer, InvalidUtf8NamesTheByteOffset) {
  try {
    neox().encode(std::string("abc\xFF" "def"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte 3"), std::string::npos) << e.what();
  }
}

TEST(HfTokenizer, UnknownIdIsAnError) {
  EXPECT_THROW(neox().decode(std::vector<int32_t>{50277}), Error);
  EXPECT_THROW(neox().decode(std::vector<int32_t>{-1}), Error);
}

TEST(Pretokenizer, SplitsLikeTheGpt2Regex) {
  auto split = [](std::string_view text) {
    std::vector<std::string_view> pieces;
    byte_level_pretokenize(text, pieces);
    return std::vector<std::string>(pieces.begin(), pieces.end());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("I'll don't"), (V{"I", "'ll", " don", "'t"}));
  EXPECT_EQ(split("a   b"), (V{"a", "  ", " b"}));       // the run's last space goes with the word
  EXPECT_EQ(split("a\t\tb"), (V{"a", "\t", "\t", "b"}));  // no space to give: single whitespace pieces
  EXPECT_EQ(split("x  "), (V{"x", "  "}));                // trailing run stays whole
  EXPECT_EQ(split("abc123 456!?"), (V{"abc", "123", " 456", "!?"}));
  EXPECT_EQ(split("!'s"), (V{"!'", "s"}));                 // punctuation runs swallow the apostrophe
  EXPECT_EQ(split("日本語 テスト"), (V{"日本語", " テスト"}));
}

TEST(HfTokenizerErrors, MalformedJsonNamesFileAndPosition) {
  try {
    HfBpeTokenizer tokenizer("{\n  \"model\": {\n    \"vocab\": [1, 2,\n", "bad/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("bad/tokenizer.json: malformed JSON at byte"), std::string::npos) << message;
    EXPECT_NE(message.find("line 4"), std::string::npos) << message;
    EXPECT_NE(message.find("HINT"), std::string::npos) << message;
  }
}

TEST(HfTokenizerErrors, StructuralProblemsNameTheField) {
  auto error_of = [](const std::string& json) {
    try {
      HfBpeTokenizer tokenizer(json, "t.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string byte_level = R"("pre_tokenizer": {"type": "ByteLevel"}, "normalizer": null)";
  EXPECT_NE(error_of("{" + byte_level + "}").find("missing field model"), std::string::npos);
  EXPECT_NE(error_of("{" + byte_level + R"(, "model": {"type": "WordPiece", "vocab": {}}})").find("model.type"),
            std::string::npos);
  EXPECT_NE(error_of("{" + byte_level + R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})")
                .find("model.merges[0]"),
            std::string::npos);
  EXPECT_NE(error_of("{" + byte_level + R"(, "model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})")
                .find("model.vocab[\"a\"]"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"pre_tokenizer": {"type": "Metaspace"}, "normalizer": null, "model": {}})").find("pre_tokenizer"),
            std::string::npos);
}

}  // namespace
}  // namespace rwkv::data
