#include "data/text_sources.h"

#include <simdjson.h>

#include "core/error.h"
#include "core/file_io.h"

namespace rwkv::data {

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
// JSON's own names for a value's type, for messages.
const char* json_type_name(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "an unknown value";
}

bool is_blank(const std::string& line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}
}  // namespace

InputFormat detect_input_format(const std::string& path) {
  if (ends_with(path, ".jsonl.zst") || ends_with(path, ".json.zst")) return InputFormat::JsonlZst;
  if (ends_with(path, ".txt.zst")) return InputFormat::TextZst;
  if (ends_with(path, ".jsonl") || ends_with(path, ".json")) return InputFormat::Jsonl;
  if (ends_with(path, ".txt") || ends_with(path, ".text") || ends_with(path, ".md")) return InputFormat::Text;
  RWKV_FAIL(path, ": unknown input format\n  ---> HINT: inputs must end in .txt, .text, .md (one document per file), "
            ".jsonl or .json (one JSON object per line), or .jsonl.zst / .txt.zst (zstd-compressed)");
}

std::vector<InputFile> resolve_inputs(const std::vector<std::string>& patterns) {
  RWKV_CHECK(!patterns.empty(), "no input files given\n  ---> HINT: pass --input PATH_OR_GLOB (repeatable)");
  std::vector<InputFile> inputs;
  for (const std::string& pattern : patterns) {
    std::vector<std::string> paths = expand_glob(pattern);
    RWKV_CHECK(!paths.empty(), "--input ", pattern, ": the pattern matches no file\n  ---> HINT: check the path; quote "
               "globs so that the shell does not expand them, e.g. --input 'corpus/*.jsonl.zst'");
    for (const std::string& path : paths) {
      RWKV_CHECK(file_exists(path), "--input ", path, ": no such file");
      inputs.push_back({path, detect_input_format(path), file_size(path)});
    }
  }
  return inputs;
}

RecordReader::RecordReader(std::vector<InputFile> inputs) : inputs_(std::move(inputs)) {
  for (const InputFile& input : inputs_) total_file_bytes_ += input.bytes;
}

bool RecordReader::open_next_file() {
  if (current_file_ >= 0) finished_bytes_ += inputs_[current_file_].bytes;
  lines_.reset();
  current_file_ = -1;
  if (next_file_ >= inputs_.size()) return false;
  current_file_ = static_cast<int64_t>(next_file_++);
  const InputFile& input = inputs_[current_file_];
  if (input.format == InputFormat::Jsonl) lines_ = std::make_unique<LineReader>(open_file_source(input.path));
  if (input.format == InputFormat::JsonlZst) lines_ = std::make_unique<LineReader>(open_zstd_source(input.path));
  return true;
}

bool RecordReader::next(RawRecord& record) {
  while (true) {
    if (current_file_ < 0 && !open_next_file()) return false;
    const InputFile& input = inputs_[current_file_];
    record.file = static_cast<uint32_t>(current_file_);
    if (!lines_) {  // a text file: the whole file is one document
      record.is_json = false;
      record.line = 0;
      if (input.format == InputFormat::Text) {
        record.payload = read_file(input.path);
      } else {
        auto source = open_zstd_source(input.path);
        record.payload.clear();
        std::vector<char> chunk(1 << 20);
        while (size_t n = source->read(chunk.data(), chunk.size())) record.payload.append(chunk.data(), n);
      }
      open_next_file();  // the text file is done; move on (current_file_ = -1 after the last)
      if (record.payload.empty()) continue;  // an empty file has no document
      return true;
    }
    if (lines_->next(line_)) {
      if (is_blank(line_)) continue;
      record.is_json = true;
      record.line = lines_->line_number();
      record.payload.swap(line_);
      return true;
    }
    if (!open_next_file()) return false;
  }
}

uint64_t RecordReader::file_bytes_consumed() const {
  return finished_bytes_ + (lines_ ? lines_->source().file_bytes_consumed() : 0);
}

std::string record_position(const RawRecord& record, const std::vector<InputFile>& inputs) {
  const std::string& path = inputs.at(record.file).path;
  return record.line > 0 ? str_cat(path, ":", record.line) : path;
}

// JSONL records are parsed with simdjson's DOM parser: it validates the whole
// line (not just the field we read) at several GB/s, where a general-purpose
// DOM library would cost as much time as the tokenizer. One parser a thread
// reuses its buffers.
std::string record_text(const RawRecord& record, const std::vector<InputFile>& inputs, const std::string& text_key) {
  if (!record.is_json) return record.payload;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(record.payload.data(), record.payload.size()).get(root);
  RWKV_CHECK(!error, record_position(record, inputs), ": malformed JSON: ", simdjson::error_message(error),
             "\n  ---> HINT: each line of a .jsonl file must be one complete JSON object, e.g. {\"text\": \"...\"}");
  RWKV_CHECK(root.is_object(), record_position(record, inputs), ": expected a JSON object, found ", json_type_name(root.type()),
             "\n  ---> HINT: each line of a .jsonl file must be one JSON object, e.g. {\"text\": \"...\"}");
  simdjson::dom::element field;
  RWKV_CHECK(!root.get_object().at_key(text_key).get(field), record_position(record, inputs), ": field \"", text_key,
             "\" is missing\n  ---> HINT: choose the field that holds the text with --text-key");
  std::string_view text;
  RWKV_CHECK(!field.get_string().get(text), record_position(record, inputs), ": field \"", text_key, "\" is ",
             json_type_name(field.type()), ", expected a string");
  return std::string(text);
}

}  // namespace rwkv::data
