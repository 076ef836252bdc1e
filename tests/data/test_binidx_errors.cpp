// Damaged shards give one clear error naming the file and the position.
#include <gtest/gtest.h>

#include <cstring>

#include "data/binidx_reader.h"
#include "data/binidx_writer.h"
#include "data/token_dataset.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

// Writes a small valid uint16 shard and returns its prefix.
std::string write_shard(const ScratchDir& dir, const std::string& name = "s") {
  BinIdxWriter writer(dir / name, TokenDType::U16);
  std::vector<int32_t> a = {1, 2, 3, 0}, b = {4, 5, 0}, c = {6, 0};
  writer.add_document(a);
  writer.add_document(b);
  writer.add_document(c);
  writer.commit();
  return dir / name;
}

std::string open_error(const std::string& prefix) {
  try {
    BinIdxReader reader(prefix);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void patch(const std::string& path, size_t offset, const std::string& bytes) {
  std::string content = testing::read_bytes(path);
  content.replace(offset, bytes.size(), bytes);
  testing::write_text(path, content);
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

TEST(BinidxErrors, BadMagic) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  patch(prefix + ".idx", 0, "TNTIDX");
  std::string message = open_error(prefix);
  EXPECT_CONTAINS(message, prefix + ".idx");
  EXPECT_CONTAINS(message, "bad magic at byte 0");
  EXPECT_CONTAINS(message, "TNTIDX");
  EXPECT_CONTAINS(message, "HINT");
}

TEST(BinidxErrors, BadVersionAndDtypeCode) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  patch(prefix + ".idx", 9, std::string("\x02", 1));
  EXPECT_CONTAINS(open_error(prefix), "unsupported version 2 at byte 9");
  patch(prefix + ".idx", 9, std::string("\x01", 1));
  patch(prefix + ".idx", 17, std::string("\x09", 1));
  EXPECT_CONTAINS(open_error(prefix), "invalid dtype code 9 at byte 17");
}

TEST(BinidxErrors, TruncatedHeader) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  testing::write_text(prefix + ".idx", testing::read_bytes(prefix + ".idx").substr(0, 20));
  std::string message = open_error(prefix);
  EXPECT_CONTAINS(message, "truncated header");
  EXPECT_CONTAINS(message, "20 bytes");
}

TEST(BinidxErrors, SizesBeyondTheIndexFile) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  uint64_t huge = 1000;
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &huge, 8);
  patch(prefix + ".idx", 18, bytes);  // declares 1000 sequences, the file holds 3
  std::string message = open_error(prefix);
  EXPECT_CONTAINS(message, "declares 1000 sequences");
  EXPECT_CONTAINS(message, "but the file has only");
}

TEST(BinidxErrors, TrailingBytesInTheIndex) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  testing::write_text(prefix + ".idx", testing::read_bytes(prefix + ".idx") + "junk");
  EXPECT_CONTAINS(open_error(prefix), "trailing data");
}

TEST(BinidxErrors, TruncatedBin) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  std::string bin = testing::read_bytes(prefix + ".bin");
  testing::write_text(prefix + ".bin", bin.substr(0, bin.size() - 3));
  std::string message = open_error(prefix);
  EXPECT_CONTAINS(message, prefix + ".bin");
  EXPECT_CONTAINS(message, "sequence 2 of 3 spans bytes [14, 18)");
  EXPECT_CONTAINS(message, "only 15 bytes");
  EXPECT_CONTAINS(message, "truncated");
}

TEST(BinidxErrors, MissingFileNamesThePath) {
  ScratchDir dir;
  std::string message = open_error(dir / "nothing");
  EXPECT_CONTAINS(message, dir / "nothing.idx");
  EXPECT_CONTAINS(message, "cannot open");
}

TEST(BinidxErrors, TokenAtOrAboveTheVocabularyNamesFileAndPosition) {
  ScratchDir dir;
  std::string prefix = write_shard(dir);
  TokenDataset data({prefix}, /*vocab_size=*/5);  // tokens 5 and 6 are out of range
  std::vector<int32_t> out(9);
  data.read(0, 4, out.data());  // 1 2 3 0: fine
  try {
    data.read(0, 9, out.data());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), prefix + ".bin: token 5 (byte 10) is 5");
    EXPECT_CONTAINS(e.what(), "[0, 5)");
    EXPECT_CONTAINS(e.what(), "HINT");
  }
}

TEST(BinidxErrors, NegativeTokenInASignedShard) {
  ScratchDir dir;
  BinIdxWriter writer(dir / "neg", TokenDType::I32);
  std::vector<int32_t> doc = {3, -7, 0};
  writer.add_document(doc);
  writer.commit();
  BinIdxReader reader(dir / "neg");
  std::vector<int32_t> out(3);
  try {
    reader.read_tokens(0, 3, out.data());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "token 1 (byte 4) is -7");
  }
}

}  // namespace
}  // namespace rwkv::data
