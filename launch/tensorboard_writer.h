// TensorBoard event files: scalars that `tensorboard --logdir` plots.
//
// File: <logdir>/events.out.tfevents.<unix seconds>.<host>, a sequence of
// TFRecords, each
//   u64 length (little-endian) | u32 masked crc32c(length bytes) | data | u32 masked crc32c(data)
// where data is a serialized Event: the first says file_version
// "brain.Event:2", the others carry Summary values {tag, simple_value}.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace rwkv::launch {

// One TFRecord around `data` (the framing above).
std::string tfrecord_frame(std::string_view data);
// A serialized Event carrying one scalar.
std::string scalar_event(const std::string& tag, int64_t step, double value, double wall_time);
// The serialized first Event of a file.
std::string file_version_event(double wall_time);

class TensorBoardWriter {
 public:
  // Creates logdir (and parents) and a new event file in it.
  explicit TensorBoardWriter(const std::string& logdir, double wall_time = 0.0);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(const std::string& tag, int64_t step, double value, double wall_time);
  // Pushes buffered records to the file (TensorBoard reads files as they grow).
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(std::string_view data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace rwkv::launch
