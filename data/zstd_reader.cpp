#include "data/zstd_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace rwkv::data {

namespace {

class FileSource final : public ByteSource {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    RWKV_CHECK(fd_ >= 0, path_, ": cannot open for reading: ", std::strerror(errno),
               "\n  ---> HINT: check the path and its permissions");
  }
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  size_t read(char* out, size_t capacity) override {
    while (true) {
      ssize_t n = ::read(fd_, out, capacity);
      if (n < 0 && errno == EINTR) continue;
      RWKV_CHECK(n >= 0, path_, ": read failed at byte ", consumed_, ": ", std::strerror(errno));
      consumed_ += static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
  }
  uint64_t file_bytes_consumed() const override { return consumed_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t consumed_ = 0;
};

class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(const std::string& path) : file_(path), input_(ZSTD_DStreamInSize()) {
    dctx_ = ZSTD_createDCtx();
    RWKV_CHECK(dctx_ != nullptr, path, ": cannot create a zstd decompression context");
    // The Pile and other corpora may be compressed with --long=31.
    ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, 31);
  }
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  size_t read(char* out, size_t capacity) override {
    ZSTD_outBuffer output{out, capacity, 0};
    while (output.pos == 0) {
      bool at_end_of_file = false;
      if (in_pos_ == in_size_) {
        in_size_ = file_.read(input_.data(), input_.size());
        in_pos_ = 0;
        at_end_of_file = in_size_ == 0;
      }
      if (at_end_of_file && frame_done_) return 0;
      // At the end of the file, one more call with no input flushes what the
      // decoder still holds; if it holds nothing, the last frame is cut short.
      ZSTD_inBuffer in{input_.data(), in_size_, in_pos_};
      uint64_t position = file_bytes_consumed();
      size_t rc = ZSTD_decompressStream(dctx_, &output, &in);
      RWKV_CHECK(!ZSTD_isError(rc), file_.path(), ": unreadable zstd data near compressed byte ", position, ": ",
                 ZSTD_getErrorName(rc), "\n  ---> HINT: the file is not zstd-compressed or is damaged; check it with `zstd -t`");
      in_pos_ = in.pos;
      frame_done_ = rc == 0;
      if (at_end_of_file && output.pos == 0) {
        RWKV_CHECK(frame_done_, file_.path(), ": unreadable zstd data: the stream ends inside a frame after ",
                   file_.file_bytes_consumed(),
                   " compressed bytes\n  ---> HINT: the file is truncated (an interrupted download?); check it with `zstd -t`");
        return 0;
      }
    }
    return output.pos;
  }
  uint64_t file_bytes_consumed() const override { return file_.file_bytes_consumed() - (in_size_ - in_pos_); }
  const std::string& path() const override { return file_.path(); }

 private:
  FileSource file_;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<char> input_;
  size_t in_size_ = 0;
  size_t in_pos_ = 0;
  bool frame_done_ = true;  // an empty file is an empty stream
};

constexpr size_t kLineBufferBytes = 1 << 20;

}  // namespace

std::unique_ptr<ByteSource> open_file_source(const std::string& path) { return std::make_unique<FileSource>(path); }
std::unique_ptr<ByteSource> open_zstd_source(const std::string& path) { return std::make_unique<ZstdSource>(path); }

LineReader::LineReader(std::unique_ptr<ByteSource> source) : source_(std::move(source)), buffer_(kLineBufferBytes) {}

bool LineReader::refill() {
  if (eof_) return false;
  if (begin_ > 0) {  // keep the partial line, move it to the front
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // a line longer than the buffer
  size_t n = source_->read(buffer_.data() + end_, buffer_.size() - end_);
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += n;
  return true;
}

bool LineReader::next(std::string& line) {
  size_t scanned = begin_;
  while (true) {
    const void* newline = std::memchr(buffer_.data() + scanned, '\n', end_ - scanned);
    if (newline != nullptr) {
      size_t at = static_cast<size_t>(static_cast<const char*>(newline) - buffer_.data());
      line.assign(buffer_.data() + begin_, at - begin_);
      begin_ = at + 1;
      ++line_number_;
      return true;
    }
    size_t already = end_ - begin_;
    if (!refill()) {
      if (end_ == begin_) return false;
      line.assign(buffer_.data() + begin_, end_ - begin_);  // last line without '\n'
      begin_ = end_;
      ++line_number_;
      return true;
    }
    scanned = begin_ + already;
  }
}

}  // namespace rwkv::data
