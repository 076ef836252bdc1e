#include "core/file_io.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace rwkv {

namespace {
std::string errno_text() { return std::strerror(errno); }
constexpr size_t kWriteBufferBytes = 1 << 20;

// The directory entry of a rename is durable only once the directory is synced.
void fsync_parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const char* dir = parent.empty() ? "." : parent.c_str();
  int fd = ::open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some filesystems do not allow it
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

// ---- MappedFile --------------------------------------------------------------

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  RWKV_CHECK(fd >= 0, path, ": cannot open for reading: ", errno_text(),
             "\n  ---> HINT: check the path and its permissions");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    RWKV_FAIL(path, ": cannot stat: ", why);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text();
      ::close(fd);
      RWKV_FAIL(path, ": cannot memory-map ", size_, " bytes: ", why);
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

// ---- AtomicFileWriter ------------------------------------------------------

AtomicFileWriter::AtomicFileWriter(std::string final_path) : final_path_(std::move(final_path)) {
  temp_path_ = str_cat(final_path_, ".tmp.", ::getpid());
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  RWKV_CHECK(fd_ >= 0, temp_path_, ": cannot create: ", errno_text(),
             "\n  ---> HINT: check that the output directory exists and is writable");
  buffer_.reserve(kWriteBufferBytes);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* bytes, size_t count) {
  RWKV_CHECK(!finished_, final_path_, ": write after finish()");
  const uint8_t* p = static_cast<const uint8_t*>(bytes);
  if (buffer_.size() + count > kWriteBufferBytes) flush_buffer();
  if (count >= kWriteBufferBytes) {
    buffer_.assign(p, p + count);  // large writes go straight through
    flush_buffer();
  } else {
    buffer_.insert(buffer_.end(), p, p + count);
  }
  bytes_written_ += count;
}

void AtomicFileWriter::flush_buffer() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    RWKV_CHECK(n > 0, temp_path_, ": write failed after ", bytes_written_, " bytes: ", errno_text(),
               "\n  ---> HINT: is the disk full?");
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void AtomicFileWriter::finish() {
  if (finished_) return;
  flush_buffer();
  RWKV_CHECK(::fsync(fd_) == 0, temp_path_, ": fsync failed: ", errno_text());
  RWKV_CHECK(::close(fd_) == 0, temp_path_, ": close failed: ", errno_text());
  fd_ = -1;
  finished_ = true;
}

void AtomicFileWriter::commit() {
  finish();
  RWKV_CHECK(::rename(temp_path_.c_str(), final_path_.c_str()) == 0, "cannot rename ", temp_path_, " to ",
             final_path_, ": ", errno_text());
  committed_ = true;
  fsync_parent_directory(final_path_);
}

// ---- helpers -----------------------------------------------------------------

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  RWKV_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot stat: ", errno_text(),
             "\n  ---> HINT: check the path");
  return static_cast<uint64_t>(st.st_size);
}

std::string read_file(const std::string& path) {
  MappedFile file(path);
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

void write_file_atomically(const std::string& path, std::string_view content) {
  AtomicFileWriter writer(path);
  writer.write(content);
  writer.commit();
}

void remove_file_if_exists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    RWKV_FAIL(path, ": cannot remove: ", errno_text());
  }
}

std::vector<std::string> expand_glob(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  glob_t result{};
  int rc = ::glob(pattern.c_str(), 0, nullptr, &result);  // glob() sorts its results
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < result.gl_pathc; ++i) paths.emplace_back(result.gl_pathv[i]);
  }
  ::globfree(&result);
  return paths;
}

std::string format_si_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1000.0 && unit < 4) {
    bytes /= 1000.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f%s" : "%.1f%s", bytes, units[unit]);
  return text;
}

uint64_t parse_byte_size(const std::string& text, const std::string& flag_name) {
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  std::string suffix = text.substr(digits);
  double multiplier = 0;
  if (suffix.empty() || suffix == "B") multiplier = 1;
  else if (suffix == "K" || suffix == "KB") multiplier = 1e3;
  else if (suffix == "M" || suffix == "MB") multiplier = 1e6;
  else if (suffix == "G" || suffix == "GB") multiplier = 1e9;
  else if (suffix == "T" || suffix == "TB") multiplier = 1e12;
  double value = 0;
  bool ok = digits > 0 && multiplier > 0;
  if (ok) {
    try {
      value = std::stod(text.substr(0, digits));
    } catch (const std::exception&) {
      ok = false;
    }
  }
  RWKV_CHECK(ok && value * multiplier >= 1, flag_name, ": cannot read '", text,
             "' as a size\n  ---> HINT: write a number with an optional unit, e.g. 512M or 1G");
  return static_cast<uint64_t>(value * multiplier);
}

}  // namespace rwkv
