// binidx: the bytes we write match the format spec, every dtype round-trips,
// and files written the way Megatron writes them read back.
#include <gtest/gtest.h>

#include <cstring>

#include "data/binidx_reader.h"
#include "data/binidx_writer.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

template <typename T>
void append_le(std::vector<uint8_t>& out, T value) {
  uint8_t bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

TEST(Binidx, IdxHeaderAndArraysMatchTheSpecByteForByte) {
  ScratchDir dir;
  BinIdxWriter writer(dir / "shard", TokenDType::U16);
  std::vector<int32_t> a = {5, 6, 0}, b = {7, 0}, c = {65535, 1, 2, 0};
  writer.add_document(a);
  writer.add_document(b);
  writer.add_document(c);
  writer.commit();

  std::vector<uint8_t> expected = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
  append_le<uint64_t>(expected, 1);  // version
  expected.push_back(8);             // dtype code: uint16
  append_le<uint64_t>(expected, 3);  // sequences
  append_le<uint64_t>(expected, 4);  // documents: doc_idx = [0, 1, 2, 3]
  for (int32_t size : {3, 2, 4}) append_le<int32_t>(expected, size);
  for (int64_t pointer : {0, 6, 10}) append_le<int64_t>(expected, pointer);  // bytes: 2 per uint16 token
  for (int64_t doc : {0, 1, 2, 3}) append_le<int64_t>(expected, doc);

  std::string idx = testing::read_bytes(dir / "shard.idx");
  ASSERT_EQ(idx.size(), expected.size());
  ASSERT_EQ(idx.size(), 34u + 3 * 12 + 4 * 8);
  EXPECT_EQ(std::vector<uint8_t>(idx.begin(), idx.end()), expected);
  EXPECT_EQ(std::vector<uint8_t>(encode_idx_header(TokenDType::U16, 3, 4)),
            std::vector<uint8_t>(expected.begin(), expected.begin() + 34));

  std::string bin = testing::read_bytes(dir / "shard.bin");
  std::vector<uint8_t> expected_bin;
  for (uint16_t t : {5, 6, 0, 7, 0, 65535, 1, 2, 0}) append_le<uint16_t>(expected_bin, t);
  EXPECT_EQ(std::vector<uint8_t>(bin.begin(), bin.end()), expected_bin);
}

TEST(Binidx, EveryDtypeCodeRoundTrips) {
  struct Case {
    TokenDType dtype;
    uint8_t code;
    int64_t max_token;
    const char* name;
  };
  const Case cases[] = {{TokenDType::U8, 1, 255, "uint8"},          {TokenDType::I8, 2, 127, "int8"},
                        {TokenDType::I16, 3, 32767, "int16"},       {TokenDType::I32, 4, 2147483647, "int32"},
                        {TokenDType::I64, 5, 2147483647, "int64"},  {TokenDType::F64, 6, 1 << 24, "float64"},
                        {TokenDType::F32, 7, 1 << 24, "float32"},   {TokenDType::U16, 8, 65535, "uint16"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    std::vector<std::vector<int64_t>> docs = {{1, 2, 3, 0}, {c.max_token, 0}, {}, {c.max_token - 1, 100, 7, 0}};
    {
      BinIdxWriter writer(dir / "d", c.dtype);
      for (auto& doc : docs) writer.add_document(std::span<const int64_t>(doc));
      writer.commit();
    }
    EXPECT_EQ(static_cast<uint8_t>(testing::read_bytes(dir / "d.idx")[17]), c.code);
    BinIdxReader reader(dir / "d");
    EXPECT_EQ(reader.dtype(), c.dtype);
    EXPECT_STREQ(token_dtype_name(reader.dtype()), c.name);
    EXPECT_EQ(parse_token_dtype(c.name), c.dtype);
    ASSERT_EQ(reader.num_sequences(), docs.size());
    EXPECT_EQ(reader.num_doc_indices(), docs.size() + 1);
    EXPECT_EQ(reader.num_tokens(), 10u);
    EXPECT_TRUE(reader.contiguous());
    EXPECT_EQ(reader.bin_bytes(), 10u * token_dtype_size(c.dtype));
    uint64_t pointer = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      ASSERT_EQ(reader.sequence_length(i), static_cast<int32_t>(docs[i].size()));
      ASSERT_EQ(reader.sequence_pointer(i), static_cast<int64_t>(pointer));
      EXPECT_EQ(reader.doc_index(i), static_cast<int64_t>(i));
      std::vector<int32_t> tokens(docs[i].size());
      reader.read_tokens(pointer / reader.dtype_size(), tokens.size(), tokens.data());
      for (size_t k = 0; k < tokens.size(); ++k) EXPECT_EQ(tokens[k], docs[i][k]);
      pointer += docs[i].size() * reader.dtype_size();
    }
  }
}

TEST(Binidx, UnalignedPointerArrayIsReadCorrectly) {
  // With an odd sequence count the i64 pointers start at 34 + 4*N, which is not
  // a multiple of 8: the reader must not dereference them as int64_t*.
  ScratchDir dir;
  BinIdxWriter writer(dir / "odd", TokenDType::I32);
  for (int d = 0; d < 5; ++d) {
    std::vector<int32_t> doc(static_cast<size_t>(d + 1), 70000 + d);
    writer.add_document(doc);
  }
  writer.commit();
  BinIdxReader reader(dir / "odd");
  EXPECT_NE((34 + 4 * 5) % 8, 0);
  int64_t expected = 0;
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(reader.sequence_pointer(i), expected);
    expected += 4 * static_cast<int64_t>(i + 1);
    int32_t first = 0;
    reader.read_tokens(static_cast<uint64_t>(reader.sequence_pointer(i)) / 4, 1, &first, 80000);
    EXPECT_EQ(first, 70000 + static_cast<int32_t>(i));
  }
}

TEST(Binidx, ReadsAnIndexWithSeveralSequencesPerDocument) {
  // Megatron allows documents made of several sequences (sentence splitting):
  // doc_idx = [0, 2, 3] here. Written by hand, byte by byte.
  ScratchDir dir;
  std::vector<uint8_t> idx = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
  append_le<uint64_t>(idx, 1);
  idx.push_back(4);  // int32
  append_le<uint64_t>(idx, 3);
  append_le<uint64_t>(idx, 3);
  for (int32_t s : {2, 1, 3}) append_le<int32_t>(idx, s);
  for (int64_t p : {0, 8, 12}) append_le<int64_t>(idx, p);
  for (int64_t d : {0, 2, 3}) append_le<int64_t>(idx, d);
  std::vector<uint8_t> bin;
  for (int32_t t : {10, 11, 12, 20, 21, 22}) append_le<int32_t>(bin, t);
  testing::write_text(dir / "m.idx", std::string(idx.begin(), idx.end()));
  testing::write_text(dir / "m.bin", std::string(bin.begin(), bin.end()));

  BinIdxReader reader(dir / "m.idx");  // a path with the extension works too
  EXPECT_EQ(reader.num_sequences(), 3u);
  EXPECT_EQ(reader.num_doc_indices(), 3u);
  EXPECT_EQ(reader.doc_index(1), 2);
  EXPECT_EQ(reader.num_tokens(), 6u);
  std::vector<int32_t> all(6);
  reader.read_tokens(0, 6, all.data());
  EXPECT_EQ(all, (std::vector<int32_t>{10, 11, 12, 20, 21, 22}));
}

TEST(Binidx, DtypeFollowsMegatronsVocabularyRule) {
  EXPECT_EQ(token_dtype_for_vocab(257), TokenDType::U16);
  EXPECT_EQ(token_dtype_for_vocab(50277), TokenDType::U16);
  EXPECT_EQ(token_dtype_for_vocab(65499), TokenDType::U16);
  EXPECT_EQ(token_dtype_for_vocab(65500), TokenDType::I32);
  EXPECT_EQ(token_dtype_for_vocab(65530), TokenDType::I32);  // RWKV World
}

TEST(Binidx, WriterRejectsATokenThatDoesNotFitTheDtype) {
  ScratchDir dir;
  BinIdxWriter writer(dir / "x", TokenDType::U16);
  std::vector<int32_t> doc = {1, 70000};
  try {
    writer.add_document(doc);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("70000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("uint16"), std::string::npos) << e.what();
  }
}

TEST(Binidx, NothingAppearsUnderTheFinalNameBeforeCommit) {
  ScratchDir dir;
  {
    BinIdxWriter writer(dir / "partial", TokenDType::U16);
    std::vector<int32_t> doc = {1, 2, 3};
    writer.add_document(doc);
    writer.finish();
    EXPECT_FALSE(std::filesystem::exists(dir / "partial.bin"));
    EXPECT_FALSE(std::filesystem::exists(dir / "partial.idx"));
  }  // dropped without commit: the temporary files go too
  EXPECT_TRUE(dir.files().empty());
}

}  // namespace
}  // namespace rwkv::data
