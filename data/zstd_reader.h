// Sequential readers for input files: plain files, zstd-compressed files (the
// Pile ships as .jsonl.zst), and a line splitter on top of either.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rwkv::data {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `capacity` bytes; returns 0 only at the end. Throws rwkv::Error
  // naming the file and position on a read or decompression failure.
  virtual size_t read(char* out, size_t capacity) = 0;
  // Bytes consumed from the file on disk so far (compressed bytes for zstd).
  virtual uint64_t file_bytes_consumed() const = 0;
  virtual const std::string& path() const = 0;
};

std::unique_ptr<ByteSource> open_file_source(const std::string& path);
// Decompresses one or more zstd frames; accepts windows up to 2 GiB (--long=31).
std::unique_ptr<ByteSource> open_zstd_source(const std::string& path);

// Splits a ByteSource into lines (without the '\n'; a trailing '\r' is kept).
class LineReader {
 public:
  explicit LineReader(std::unique_ptr<ByteSource> source);
  bool next(std::string& line);        // false at the end
  uint64_t line_number() const { return line_number_; }  // 1-based number of the last line returned
  const ByteSource& source() const { return *source_; }

 private:
  bool refill();
  std::unique_ptr<ByteSource> source_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

}  // namespace rwkv::data
