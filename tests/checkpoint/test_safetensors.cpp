// safetensors against its specification: byte layout, round trip, and every
// malformed file rejected with the file and tensor named.
#include "checkpoint/safetensors.h"

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace rwkv::checkpoint {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("rwkv_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

TEST(Safetensors, ByteLayoutFollowsTheSpec) {
  const std::string path = temp_path("layout.safetensors");
  Tensor a = Tensor::from_vector<float>({1.0f, 2.0f, 3.0f}, {3});
  Tensor b = Tensor::from_vector<int32_t>({7, 8}, {1, 2});
  write_safetensors(path, {{"a", a}, {"b", b}}, {{"format", "pt"}});
  const std::string bytes = slurp(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[static_cast<size_t>(i)])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12 + 8);
  const std::string header = bytes.substr(8, n);
  EXPECT_NE(header.find("\"a\":{\"data_offsets\":[0,12],\"dtype\":\"F32\",\"shape\":[3]}"), std::string::npos) << header;
  EXPECT_NE(header.find("\"b\":{\"data_offsets\":[12,20],\"dtype\":\"I32\",\"shape\":[1,2]}"), std::string::npos) << header;
  EXPECT_NE(header.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos) << header;
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
  std::filesystem::remove(path);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  const std::string path = temp_path("roundtrip.safetensors");
  NamedTensors tensors = {{"f32", test::random_tensor({2, 3}, DType::F32, 1)},
                          {"f64", test::random_tensor({4}, DType::F64, 2)},
                          {"bf16", test::random_tensor({5}, DType::BF16, 3)},
                          {"i64", Tensor::from_vector<int64_t>({-1, 1LL << 40}, {2})},
                          {"u16", Tensor::from_vector<uint16_t>({65535}, {1})},
                          {"empty", Tensor::empty({0, 4}, DType::F32)}};
  write_safetensors(path, tensors, {{"step", "12"}});
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("step"), "12");
  ASSERT_EQ(f.entries().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    Tensor back = f.read(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_EQ(std::memcmp(back.raw_data(), t.raw_data(), t.nbytes()), 0) << name;
  }
  Tensor wrong = Tensor::empty({3, 2}, DType::F32);
  test::expect_error([&] { f.read_into("f32", wrong); }, {"'f32'", "F32[2, 3]", "expected F32[3, 2]"});
  test::expect_error([&] { f.read("nope"); }, {"no tensor named 'nope'"});
  std::filesystem::remove(path);
}

TEST(Safetensors, MalformedFilesAreRejectedWithTheFileNamed) {
  const std::string good = temp_path("good.safetensors"), bad = temp_path("bad.safetensors");
  write_safetensors(good, {{"w", test::random_tensor({4, 4}, DType::F32, 4)}});
  const std::string bytes = slurp(good);
  spit(bad, bytes.substr(0, bytes.size() - 4));  // truncated data
  test::expect_error([&] { SafetensorsFile f(bad); }, {bad, "'w'", "outside", "truncated"});
  spit(bad, bytes.substr(0, 5));
  test::expect_error([&] { SafetensorsFile f(bad); }, {bad, "shorter than the 8-byte header"});
  std::string huge = bytes;
  huge[7] = '\x7f';
  spit(bad, huge);
  test::expect_error([&] { SafetensorsFile f(bad); }, {bad, "runs past the end"});
  std::string garbage = bytes;
  garbage[8] = '[';
  garbage[9] = '?';
  spit(bad, garbage);
  test::expect_error([&] { SafetensorsFile f(bad); }, {bad, "not valid JSON"});
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

}  // namespace
}  // namespace rwkv::checkpoint
