// TensorBoard event files against the spec: CRC-32C test vectors (RFC 3720),
// the TFRecord framing byte by byte, the Event/Summary wire format byte by
// byte (field numbers of TensorBoard's event.proto and summary.proto), and a
// whole file read back record by record.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "launch/crc32c.h"
#include "launch/tensorboard_event.pb.h"
#include "launch/tensorboard_writer.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

uint64_t le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC catalogue's check value
  EXPECT_EQ(crc32c(""), 0x00000000u);
  // RFC 3720 (iSCSI) appendix B.4
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32c, MaskRotatesRightBy15AndAddsTheConstant) {
  EXPECT_EQ(mask_crc32c(0), 0xa282ead8u);
  EXPECT_EQ(mask_crc32c(0x00008000u), 0xa282ead8u + 1u);  // bit 15 rotates to bit 0
  EXPECT_EQ(mask_crc32c(0x00000001u), 0xa282ead8u + 0x00020000u);  // bit 0 rotates to bit 17
  EXPECT_EQ(mask_crc32c(0xE3069283u), ((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u);
}

TEST(TfRecord, FramingIsLengthCrcDataCrc) {
  const std::string data = "abc";
  const std::string record = tfrecord_frame(data);
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record.substr(0, 8), bytes({3, 0, 0, 0, 0, 0, 0, 0}));  // u64 little-endian length
  EXPECT_EQ(le32(record, 8), mask_crc32c(crc32c(record.substr(0, 8))));
  EXPECT_EQ(record.substr(12, 3), data);
  EXPECT_EQ(le32(record, 15), mask_crc32c(crc32c(data)));
}

TEST(TensorBoardEvent, ScalarWireFormatMatchesEventProtoFieldNumbers) {
  // Event { wall_time(1, double) = 1.5, step(2, int64) = 7,
  //         summary(5) { value(1) { tag(1) = "loss", simple_value(2, float) = 2.5 } } }
  const std::string expected = bytes({0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  // wall_time
                                      0x10, 0x07,                           // step
                                      0x2A, 0x0D,                           // summary, 13 bytes
                                      0x0A, 0x0B,                           //  value, 11 bytes
                                      0x0A, 0x04, 'l', 'o', 's', 's',       //   tag
                                      0x15, 0x00, 0x00, 0x20, 0x40});       //   simple_value 2.5f
  EXPECT_EQ(scalar_event("loss", 7, 2.5, 1.5), expected);
}

TEST(TensorBoardEvent, FileVersionWireFormat) {
  std::string expected = bytes({0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x1A, 13});
  expected += "brain.Event:2";
  EXPECT_EQ(file_version_event(1.5), expected);
}

TEST(TensorBoardWriter, FileReadsBackRecordByRecord) {
  testing::TempDir dir;
  std::string path;
  {
    TensorBoardWriter writer(dir.file("tb/job"), 1700000000.0);
    writer.add_scalar("loss", 1, 3.25, 1700000001.0);
    writer.add_scalar("lr", 1, 1e-3, 1700000001.0);
    writer.add_scalar("loss", 2, 3.0, 1700000002.0);
    writer.flush();
    path = writer.path();
  }
  // TensorBoard finds files by this name pattern.
  EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.1700000000.", 0), 0u) << path;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  const std::string file = text.str();
  std::vector<tb::Event> events;
  size_t at = 0;
  while (at < file.size()) {
    ASSERT_LE(at + 12, file.size());
    const uint64_t length = le64(file, at);
    ASSERT_EQ(le32(file, at + 8), mask_crc32c(crc32c(file.substr(at, 8)))) << "length crc of record " << events.size();
    ASSERT_LE(at + 12 + length + 4, file.size());
    const std::string data = file.substr(at + 12, length);
    ASSERT_EQ(le32(file, at + 12 + length), mask_crc32c(crc32c(data))) << "data crc of record " << events.size();
    tb::Event e;
    ASSERT_TRUE(e.ParseFromString(data));
    events.push_back(e);
    at += 12 + length + 4;
  }
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_DOUBLE_EQ(events[0].wall_time(), 1700000000.0);
  EXPECT_EQ(events[1].step(), 1);
  EXPECT_EQ(events[1].summary().value(0).tag(), "loss");
  EXPECT_FLOAT_EQ(events[1].summary().value(0).simple_value(), 3.25f);
  EXPECT_EQ(events[2].summary().value(0).tag(), "lr");
  EXPECT_FLOAT_EQ(events[2].summary().value(0).simple_value(), 1e-3f);
  EXPECT_EQ(events[3].step(), 2);
  EXPECT_DOUBLE_EQ(events[3].wall_time(), 1700000002.0);
}

TEST(TensorBoardWriter, UnwritableDirectoryIsAClearError) {
  testing::TempDir dir;
  std::ofstream(dir.file("file")) << "x";
  try {
    TensorBoardWriter writer(dir.file("file/sub"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("file/sub"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rwkv::launch
