// Input corpora for `rwkv-data prepare` and `train-tokenizer`:
//   *.txt, *.text, *.md        one document per file
//   *.jsonl, *.json            one JSON object per line, text in a field ("text")
//   *.jsonl.zst, *.json.zst    the same, zstd-compressed (the Pile's layout:
//                              {"text": ..., "meta": {"pile_set_name": ...}})
//   *.txt.zst                  one document per file, zstd-compressed
// Patterns are shell globs, expanded in sorted order; files are read in the
// order given, so a run always sees the same documents in the same order.
//
// Reading is split in two so that JSON parsing can run on worker threads: a
// RecordReader yields raw records (a JSON line or a whole text file) with
// their position, and record_text() turns one into its document text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/zstd_reader.h"

namespace rwkv::data {

enum class InputFormat { Text, TextZst, Jsonl, JsonlZst };

struct InputFile {
  std::string path;
  InputFormat format;
  uint64_t bytes;  // size on disk (compressed for .zst)
};

InputFormat detect_input_format(const std::string& path);
// Expands the patterns; throws naming a pattern that matches nothing.
std::vector<InputFile> resolve_inputs(const std::vector<std::string>& patterns);

struct RawRecord {
  uint32_t file = 0;     // index into the input list
  uint64_t line = 0;     // 1-based line for JSONL, 0 for a whole text file
  bool is_json = false;
  std::string payload;   // the JSON line, or the file's text
};

class RecordReader {
 public:
  explicit RecordReader(std::vector<InputFile> inputs);
  // Fills `record` with the next record; false after the last one. Blank JSONL
  // lines are skipped.
  bool next(RawRecord& record);
  const std::vector<InputFile>& inputs() const { return inputs_; }
  uint64_t total_file_bytes() const { return total_file_bytes_; }
  uint64_t file_bytes_consumed() const;  // across all files so far (for progress and ETA)

 private:
  bool open_next_file();
  std::vector<InputFile> inputs_;
  size_t next_file_ = 0;
  int64_t current_file_ = -1;
  std::unique_ptr<LineReader> lines_;
  uint64_t finished_bytes_ = 0;
  uint64_t total_file_bytes_ = 0;
  std::string line_;
};

// The document text of a record: the payload of a text file, or the string
// field `text_key` of a JSON line. Throws naming the file, line and field.
std::string record_text(const RawRecord& record, const std::vector<InputFile>& inputs, const std::string& text_key);

// "path:line" (or "path" for a whole-file record), for messages.
std::string record_position(const RawRecord& record, const std::vector<InputFile>& inputs);

}  // namespace rwkv::data
