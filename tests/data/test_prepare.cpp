// prepare: documents in input order with end-of-document tokens, shards of the
// target size, identical output for any thread count, and all-or-nothing
// output when something fails.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/binidx_reader.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/prepare.h"
#include "data/token_dataset.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

// A small corpus in three formats; returns the documents in input order.
std::vector<std::string> write_corpus(const ScratchDir& dir, int documents = 300) {
  std::vector<std::string> texts;
  std::string jsonl, pile;
  for (int i = 0; i < documents; ++i) {
    std::string text = "Document " + std::to_string(i) + ": " + std::string(static_cast<size_t>(i % 37), 'x') +
                       " \xE6\x97\xA5\xE6\x9C\xAC caf\xC3\xA9 \xF0\x9F\x98\x80\n";
    nlohmann::json record = {{"text", text}, {"meta", {{"pile_set_name", "Test"}}}};
    if (i % 2 == 0) jsonl += record.dump() + "\n";
    else pile += record.dump() + "\n";
  }
  // Input order: in/a.jsonl (even documents), in/b.jsonl.zst (odd), in/c.txt.
  std::filesystem::create_directories(dir / "in");
  testing::write_text(dir / "in/a.jsonl", jsonl);
  testing::write_zstd(dir / "in/b.jsonl.zst", pile);
  testing::write_text(dir / "in/c.txt", "a text file is one document.\n\nEven with blank lines.\n");
  for (const std::string& line : testing::read_lines(dir / "in/a.jsonl")) texts.push_back(nlohmann::json::parse(line)["text"]);
  for (size_t start = 0; start < pile.size();) {
    size_t end = pile.find('\n', start);
    texts.push_back(nlohmann::json::parse(pile.substr(start, end - start))["text"]);
    start = end + 1;
  }
  texts.push_back("a text file is one document.\n\nEven with blank lines.\n");
  return texts;
}

PrepareOptions options_for(const ScratchDir& dir, const std::string& name) {
  PrepareOptions options;
  options.inputs = {dir / "in/a.jsonl", dir / "in/*.zst", dir / "in/c.txt"};
  options.output_prefix = dir / name;
  options.progress_seconds = 0;
  return options;
}

std::vector<std::string> documents_of(const std::vector<std::string>& prefixes, const Tokenizer& tokenizer) {
  std::vector<std::string> texts;
  for (const std::string& prefix : prefixes) {
    BinIdxReader shard(prefix);
    for (uint64_t i = 0; i < shard.num_sequences(); ++i) {
      std::vector<int32_t> ids(static_cast<size_t>(shard.sequence_length(i)));
      shard.read_tokens(static_cast<uint64_t>(shard.sequence_pointer(i)) / shard.dtype_size(), ids.size(), ids.data());
      EXPECT_EQ(ids.back(), tokenizer.eod_id());  // every document ends with end-of-document
      ids.pop_back();
      texts.push_back(tokenizer.decode(ids));
    }
  }
  return texts;
}

TEST(Prepare, DocumentsInInputOrderWithEndOfDocument) {
  ScratchDir dir;
  std::vector<std::string> texts = write_corpus(dir);
  HfBpeTokenizer neox(testing::shared_data("20B_tokenizer.json"));
  PrepareStats stats = prepare_dataset(options_for(dir, "neox"), neox);
  ASSERT_EQ(stats.shard_prefixes, std::vector<std::string>{dir / "neox_00000"});
  EXPECT_EQ(stats.documents, texts.size());
  EXPECT_EQ(documents_of(stats.shard_prefixes, neox), texts);
  BinIdxReader shard(stats.shard_prefixes[0]);
  EXPECT_EQ(shard.dtype(), TokenDType::U16);
  EXPECT_EQ(shard.num_tokens(), stats.tokens);
  size_t text_bytes = 0;
  for (const auto& t : texts) text_bytes += t.size();
  EXPECT_EQ(stats.text_bytes, text_bytes);
}

TEST(Prepare, IdenticalBytesForAnyThreadCountAndRun) {
  ScratchDir dir;
  write_corpus(dir, 2000);
  HfBpeTokenizer neox(testing::shared_data("20B_tokenizer.json"));
  std::vector<std::string> reference;
  for (int threads : {1, 2, 2, 5}) {
    SCOPED_TRACE(threads);
    ScratchDir out;
    PrepareOptions options = options_for(dir, "unused");
    options.output_prefix = out / "run";
    options.threads = threads;
    options.shard_bytes = 10000;  // several shards
    PrepareStats stats = prepare_dataset(options, neox);
    std::vector<std::string> contents;
    for (const std::string& name : out.files()) contents.push_back(name + "\n" + testing::read_bytes(out / name));
    if (reference.empty()) {
      reference = contents;
      EXPECT_GT(stats.shard_prefixes.size(), 3u);
    } else {
      EXPECT_EQ(contents, reference);
    }
  }
}

TEST(Prepare, ShardsCloseAtTheTargetSizeOnDocumentBoundaries) {
  ScratchDir dir;
  std::vector<std::string> texts = write_corpus(dir);
  ByteTokenizer bytes;
  PrepareOptions options = options_for(dir, "bytes");
  options.shard_bytes = 4000;
  PrepareStats stats = prepare_dataset(options, bytes);
  ASSERT_GT(stats.shard_prefixes.size(), 3u);
  for (size_t i = 0; i < stats.shard_prefixes.size(); ++i) {
    EXPECT_EQ(stats.shard_prefixes[i], shard_prefix(dir / "bytes", i));
    BinIdxReader shard(stats.shard_prefixes[i]);
    if (i + 1 < stats.shard_prefixes.size()) {
      EXPECT_GE(shard.bin_bytes(), 4000u);
      // Closed by the document that crossed the target, not later.
      EXPECT_LT(shard.bin_bytes() - 2 * static_cast<uint64_t>(shard.sequence_length(shard.num_sequences() - 1)), 4000u);
    }
  }
  EXPECT_EQ(documents_of(stats.shard_prefixes, bytes), texts);
  EXPECT_EQ(find_shards(dir / "bytes"), stats.shard_prefixes);
  TokenDataset data = TokenDataset::open(dir / "bytes", bytes.vocab_size());
  EXPECT_EQ(static_cast<uint64_t>(data.num_tokens()), stats.tokens);
}

TEST(Prepare, RefusesToOverwriteUnlessAskedAndRemovesStaleShards) {
  ScratchDir dir;
  write_corpus(dir);
  ByteTokenizer bytes;
  PrepareOptions options = options_for(dir, "out");
  options.shard_bytes = 4000;
  size_t many = prepare_dataset(options, bytes).shard_prefixes.size();
  EXPECT_THROW(prepare_dataset(options, bytes), Error);
  options.overwrite = true;
  options.shard_bytes = 1 << 30;
  EXPECT_EQ(prepare_dataset(options, bytes).shard_prefixes.size(), 1u);
  EXPECT_EQ(find_shards(dir / "out").size(), 1u);  // the other many-1 shards are gone
  EXPECT_GT(many, 1u);
}

TEST(Prepare, WorldTokenizerWritesInt32) {
  ScratchDir dir;
  std::vector<std::string> texts = write_corpus(dir, 20);
  auto world = load_tokenizer(testing::shared_data("rwkv_vocab_v20230424.txt"));
  PrepareStats stats = prepare_dataset(options_for(dir, "world"), *world);
  EXPECT_EQ(BinIdxReader(stats.shard_prefixes[0]).dtype(), TokenDType::I32);
  EXPECT_EQ(documents_of(stats.shard_prefixes, *world), texts);
}

TEST(Prepare, AFailureLeavesNothingUnderAFinalName) {
  ScratchDir dir;
  write_corpus(dir, 3000);
  // A bad line late in the last JSONL input: several shards are already done
  // by then, but none may appear.
  testing::write_text(dir / "in/z.jsonl", "{\"text\": \"fine\"}\n{\"text\": broken}\n");
  ByteTokenizer bytes;
  PrepareOptions options = options_for(dir, "out/fail");
  options.inputs.push_back(dir / "in/z.jsonl");
  options.shard_bytes = 2000;
  std::filesystem::create_directories(dir / "out");
  try {
    prepare_dataset(options, bytes);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "in/z.jsonl:2: malformed JSON"), std::string::npos) << e.what();
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir / "out")) {
    ADD_FAILURE() << "left behind: " << entry.path();
  }
}

TEST(Prepare, InvalidUtf8NamesTheDocument) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "in");
  testing::write_text(dir / "in/bad.txt", "good start \xC3\x28 bad");
  HfBpeTokenizer neox(testing::shared_data("20B_tokenizer.json"));
  PrepareOptions options;
  options.inputs = {dir / "in/bad.txt"};
  options.output_prefix = dir / "o";
  options.progress_seconds = 0;
  try {
    prepare_dataset(options, neox);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "in/bad.txt: invalid UTF-8 at byte 11"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rwkv::data
