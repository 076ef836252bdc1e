#include "launch/tensorboard_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "launch/crc32c.h"
#include "launch/tensorboard_event.pb.h"

namespace rwkv::launch {

namespace {

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string tfrecord_frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, mask_crc32c(crc32c(out.data(), 8)), 4);
  out.append(data);
  put_le(out, mask_crc32c(crc32c(data)), 4);
  return out;
}

std::string scalar_event(const std::string& tag, int64_t step, double value, double wall_time) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  tb::SummaryValue* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  return event.SerializeAsString();
}

std::string file_version_event(double wall_time) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version("brain.Event:2");
  return event.SerializeAsString();
}

TensorBoardWriter::TensorBoardWriter(const std::string& logdir, double wall_time) {
  if (wall_time <= 0.0) wall_time = now_seconds();
  std::error_code ec;
  std::filesystem::create_directories(logdir, ec);
  RWKV_CHECK(!ec, logdir, ": cannot create the TensorBoard directory: ", ec.message(),
             "\n  ---> HINT: pass a writable --tensorboard-dir");
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  // The pid keeps two writers started in the same second apart.
  path_ = str_cat(logdir, "/events.out.tfevents.", static_cast<int64_t>(wall_time), ".", host, ".", ::getpid());
  for (int n = 1; std::filesystem::exists(path_); ++n) path_ += str_cat(".", n);
  file_ = std::fopen(path_.c_str(), "wb");
  RWKV_CHECK(file_ != nullptr, path_, ": cannot create the event file: ", std::strerror(errno),
             "\n  ---> HINT: pass a writable --tensorboard-dir");
  write_record(file_version_event(wall_time));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  write_record(scalar_event(tag, step, value, wall_time));
}

void TensorBoardWriter::flush() { std::fflush(file_); }

void TensorBoardWriter::write_record(std::string_view data) {
  const std::string record = tfrecord_frame(data);
  RWKV_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size(), path_,
             ": cannot write the event file: ", std::strerror(errno), "\n  ---> HINT: is the disk full?");
}

}  // namespace rwkv::launch
