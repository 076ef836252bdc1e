// Plain bytes, and choosing a tokenizer from a spec string.
#include <gtest/gtest.h>

#include "data/byte_tokenizer.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

TEST(ByteTokenizer, IdIsBytePlusOne) {
  ByteTokenizer bytes;
  EXPECT_EQ(bytes.vocab_size(), 257);
  EXPECT_EQ(bytes.eod_id(), 0);
  EXPECT_EQ(bytes.encode(std::string("A\0\xff", 3)), (std::vector<int32_t>{66, 1, 256}));
  EXPECT_EQ(bytes.decode(std::vector<int32_t>{66, 1, 256, 0}), std::string("A\0\xff", 3));
  EXPECT_THROW(bytes.decode(std::vector<int32_t>{257}), Error);
}

TEST(TokenizerSpec, LoadsEachKind) {
  EXPECT_EQ(load_tokenizer("bytes")->vocab_size(), 257);
  EXPECT_EQ(load_tokenizer(testing::shared_data("20B_tokenizer.json"))->vocab_size(), 50277);
  EXPECT_EQ(load_tokenizer("world:" + testing::shared_data("rwkv_vocab_v20230424.txt"))->vocab_size(), 65530);
  try {
    load_tokenizer("something.bin");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos);
  }
}

TEST(TokenizerSpec, CommittedVocabulariesAreTheSharedOnes) {
  // data/vocab/ holds copies so that users need nothing outside the repository.
  EXPECT_EQ(testing::read_bytes(testing::repo_path("data/vocab/20B_tokenizer.json")),
            testing::read_bytes(testing::shared_data("20B_tokenizer.json")));
  EXPECT_EQ(testing::read_bytes(testing::repo_path("data/vocab/rwkv_vocab_v20230424.txt")),
            testing::read_bytes(testing::shared_data("rwkv_vocab_v20230424.txt")));
}

}  // namespace
}  // namespace rwkv::data
