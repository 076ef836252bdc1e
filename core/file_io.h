// Files every component reads and writes (shards, checkpoints, controller state).
//
// MappedFile: a read-only memory map (zero-copy access to shards of any size).
// AtomicFileWriter: writes under a temporary name, fsyncs, and renames to the
// final name only on commit(), so a failed or killed run never leaves a
// half-written file under the final name. Dropping an uncommitted writer
// removes its temporary file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws rwkv::Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;  // nullptr for an empty file
  size_t size_ = 0;
};

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string final_path);
  ~AtomicFileWriter();  // removes the temporary file unless committed
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* bytes, size_t count);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  uint64_t bytes_written() const { return bytes_written_; }

  // Flushes, fsyncs and closes the temporary file (still under its temporary name).
  void finish();
  // finish() if needed, then renames to the final name and fsyncs the directory.
  void commit();

  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void flush_buffer();
  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  bool finished_ = false;
  bool committed_ = false;
  std::vector<uint8_t> buffer_;
  uint64_t bytes_written_ = 0;
};

bool file_exists(const std::string& path);
uint64_t file_size(const std::string& path);      // throws naming the path
std::string read_file(const std::string& path);    // whole file; throws naming the path
void write_file_atomically(const std::string& path, std::string_view content);
void remove_file_if_exists(const std::string& path);

// Expands a shell glob (sorted, so runs see files in the same order). A pattern
// without wildcards is returned as is, whether or not it exists.
std::vector<std::string> expand_glob(const std::string& pattern);

// Byte counts in SI units for progress lines ("310.9KB"; format_bytes in
// core/caching_allocator.h gives binary units), and sizes like "512M" or "1G"
// on the command line.
std::string format_si_bytes(double bytes);
uint64_t parse_byte_size(const std::string& text, const std::string& flag_name);

}  // namespace rwkv
