// Input files: formats, globs, zstd, JSON fields, and the errors they can raise.
#include <gtest/gtest.h>

#include "data/text_sources.h"
#include "test_util.h"

namespace rwkv::data {
namespace {

using testing::ScratchDir;

std::vector<std::string> all_texts(const std::vector<std::string>& patterns, const std::string& key = "text") {
  std::vector<InputFile> inputs = resolve_inputs(patterns);
  RecordReader reader(inputs);
  RawRecord record;
  std::vector<std::string> texts;
  while (reader.next(record)) texts.push_back(record_text(record, inputs, key));
  EXPECT_EQ(reader.file_bytes_consumed(), reader.total_file_bytes());
  return texts;
}

TEST(TextSources, ReadsEveryFormatInOrder) {
  ScratchDir dir;
  testing::write_text(dir / "a.txt", "whole file\nis one document\n");
  testing::write_text(dir / "b.jsonl", "{\"text\": \"first\"}\n\n{\"text\": \"second\\n\", \"x\": 1}\n");
  testing::write_zstd(dir / "c.jsonl.zst",
                      "{\"text\": \"pile one\", \"meta\": {\"pile_set_name\": \"Pile-CC\"}}\n"
                      "{\"text\": \"pile two\", \"meta\": {\"pile_set_name\": \"Wikipedia (en)\"}}");
  testing::write_zstd(dir / "d.txt.zst", "compressed text");
  testing::write_text(dir / "e.txt", "");  // empty: no document
  EXPECT_EQ(all_texts({dir / "*.txt", dir / "*.jsonl", dir / "c.jsonl.zst", dir / "d.txt.zst"}),
            (std::vector<std::string>{"whole file\nis one document\n", "first", "second\n", "pile one", "pile two",
                                      "compressed text"}));
}

TEST(TextSources, LongLinesAndManyZstdFrames) {
  ScratchDir dir;
  std::string long_text(3 << 20, 'x');  // longer than the line buffer
  std::string content = "{\"text\": \"" + long_text + "\"}\n";
  for (int i = 0; i < 1000; ++i) content += "{\"text\": \"line " + std::to_string(i) + "\"}\n";
  // Two concatenated frames, as `cat a.zst b.zst` makes.
  testing::write_zstd(dir / "x1.zst.part", content.substr(0, content.size() / 2));
  testing::write_zstd(dir / "x2.zst.part", content.substr(content.size() / 2));
  testing::write_text(dir / "x.jsonl.zst", testing::read_bytes(dir / "x1.zst.part") + testing::read_bytes(dir / "x2.zst.part"));
  std::vector<std::string> texts = all_texts({dir / "x.jsonl.zst"});
  ASSERT_EQ(texts.size(), 1001u);
  EXPECT_EQ(texts[0], long_text);
  EXPECT_EQ(texts[1000], "line 999");
}

TEST(TextSources, CustomTextKey) {
  ScratchDir dir;
  testing::write_text(dir / "k.jsonl", "{\"content\": \"abc\"}\n");
  EXPECT_EQ(all_texts({dir / "k.jsonl"}, "content"), std::vector<std::string>{"abc"});
}

std::string error_of(const std::vector<std::string>& patterns, const std::string& key = "text") {
  try {
    all_texts(patterns, key);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

TEST(TextSourcesErrors, MalformedJsonlLineNamesFileAndLine) {
  ScratchDir dir;
  testing::write_text(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
  std::string message = error_of({dir / "bad.jsonl"});
  EXPECT_CONTAINS(message, dir / "bad.jsonl:2: malformed JSON");
  EXPECT_CONTAINS(message, "HINT");
}

TEST(TextSourcesErrors, MissingOrWrongTypedField) {
  ScratchDir dir;
  testing::write_text(dir / "f.jsonl", "{\"body\": \"x\"}\n");
  EXPECT_CONTAINS(error_of({dir / "f.jsonl"}), dir / "f.jsonl:1: field \"text\" is missing");
  testing::write_text(dir / "g.jsonl", "{\"text\": 42}\n");
  EXPECT_CONTAINS(error_of({dir / "g.jsonl"}), dir / "g.jsonl:1: field \"text\" is a number, expected a string");
  testing::write_text(dir / "h.jsonl", "[1, 2]\n");
  EXPECT_CONTAINS(error_of({dir / "h.jsonl"}), "expected a JSON object");
}

TEST(TextSourcesErrors, UnreadableZstd) {
  ScratchDir dir;
  testing::write_text(dir / "garbage.jsonl.zst", "this is not zstd at all");
  std::string message = error_of({dir / "garbage.jsonl.zst"});
  EXPECT_CONTAINS(message, dir / "garbage.jsonl.zst: unreadable zstd data");
  EXPECT_CONTAINS(message, "HINT");

  std::string content;
  for (int i = 0; i < 2000; ++i) content += "{\"text\": \"document number " + std::to_string(i) + "\"}\n";
  testing::write_zstd(dir / "full.zst.part", content);
  std::string full = testing::read_bytes(dir / "full.zst.part");
  testing::write_text(dir / "cut.jsonl.zst", full.substr(0, full.size() / 2));
  message = error_of({dir / "cut.jsonl.zst"});
  EXPECT_CONTAINS(message, dir / "cut.jsonl.zst: unreadable zstd data");
  EXPECT_CONTAINS(message, "truncated");
}

TEST(TextSourcesErrors, PatternsAndFormats) {
  ScratchDir dir;
  EXPECT_CONTAINS(error_of({dir / "none-*.jsonl"}), "matches no file");
  testing::write_text(dir / "data.csv", "a,b\n");
  EXPECT_CONTAINS(error_of({dir / "data.csv"}), "unknown input format");
}

}  // namespace
}  // namespace rwkv::data
