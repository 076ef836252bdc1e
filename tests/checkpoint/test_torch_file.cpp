// PyTorch .pth files (torch.save's zip format) against an independent
// implementation of that format: tests/checkpoint/torch_format.py writes and
// reads them with Python's own pickle and zipfile modules, naming the same
// globals torch does. We read what it writes (every dtype, shared storages,
// parameters, non-tensor entries), it reads what we write, and every damaged
// or hostile file is refused with the file named.
#include "checkpoint/torch_file.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoint/tensor_source.h"
#include "test_util.h"

namespace rwkv::checkpoint {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("rwkv_pth_" + std::to_string(::getpid()) + "_" + name)).string();
}

// The script's JSON (stdout), or a failed test with its output.
nlohmann::json python(const std::string& arguments) {
  const test::CommandResult r =
      test::run_command(std::string(RWKV_TEST_PYTHON3) + " " + RWKV_TORCH_FORMAT_SCRIPT + " " + arguments);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0 || r.output.empty()) return nlohmann::json();
  return nlohmann::json::parse(r.output);
}

std::vector<double> values_of(const TensorSource& file, const std::string& name) {
  const TensorSource::Info& info = file.info(name);
  Tensor t = Tensor::empty(info.shape, info.dtype);
  file.read_into(name, t);
  return test::as_doubles(t);
}

TEST(TorchFile, ReadsWhatTorchSaveWrites) {
  const std::string path = temp_path("fixture.pth");
  const nlohmann::json expected = python("write " + path);
  ASSERT_TRUE(expected.is_object());
  const std::unique_ptr<TensorSource> file = open_tensor_file(path);  // by content: a zip
  ASSERT_NE(dynamic_cast<TorchFile*>(file.get()), nullptr);
  // Every tensor in the pickle's order; "step" (an int) is not one.
  std::vector<std::string> names;
  for (const TensorSource::Info& i : file->tensors()) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"emb.weight", "view.of.emb", "bf16.vec", "half.vec", "mix", "param"}));
  const std::map<std::string, DType> dtypes = {{"f32", DType::F32}, {"bf16", DType::BF16}, {"f64", DType::F64},
                                               {"f16", DType::F32}};  // f16 is widened to f32
  for (const auto& [name, want] : expected.items()) {
    const TensorSource::Info& info = file->info(name);
    EXPECT_EQ(info.dtype, dtypes.at(want["dtype"].get<std::string>())) << name;
    EXPECT_EQ(info.shape, want["shape"].get<Shape>()) << name;
    // Exact: f16 and bf16 widen to f32 without rounding.
    EXPECT_EQ(values_of(*file, name), want["values"].get<std::vector<double>>()) << name;
  }
  // Into a tensor of another dtype or shape: an error naming both.
  Tensor wrong = Tensor::empty({3, 2}, DType::F32);
  test::expect_error([&] { file->read_into("emb.weight", wrong); }, {path, "'emb.weight'", "[2, 3]", "[3, 2]"});
  fs::remove(path);
}

TEST(TorchFile, WritesWhatTorchLoadReads) {
  const std::string path = temp_path("ours.pth");
  const NamedTensors tensors = {{"emb.weight", test::random_tensor({3, 4}, DType::F32, 1)},
                                {"blocks.0.att.time_mix_k", test::random_tensor({1, 1, 4}, DType::F32, 2)},
                                {"head.weight", test::random_tensor({5, 4}, DType::BF16, 3)},
                                {"f64", test::random_tensor({2}, DType::F64, 4)},
                                {"i64", Tensor::from_vector<int64_t>({-7, 1LL << 40}, {2})},
                                {"empty", Tensor::empty({0, 4}, DType::F32)}};
  write_torch_file(path, tensors, "ours");
  const nlohmann::json got = python("read " + path);
  ASSERT_TRUE(got.is_object());
  std::vector<std::string> order;
  for (const auto& [name, t] : tensors) order.push_back(name);
  EXPECT_EQ(got["order"].get<std::vector<std::string>>(), order);
  EXPECT_EQ(got["entries"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"ours/data.pkl", "ours/byteorder", "ours/data/0", "ours/data/1", "ours/data/2",
                                      "ours/data/3", "ours/data/4", "ours/data/5", "ours/version"}));
  EXPECT_TRUE(got["stored"].get<bool>()) << "torch.save stores its records uncompressed";
  EXPECT_EQ(got["version"], "3\n");
  EXPECT_EQ(got["byteorder"], "little");
  const std::map<DType, std::string> names = {{DType::F32, "f32"}, {DType::BF16, "bf16"}, {DType::F64, "f64"},
                                              {DType::I64, "i64"}};
  for (const auto& [name, t] : tensors) {
    const nlohmann::json& g = got["tensors"][name];
    EXPECT_EQ(g["dtype"], names.at(t.dtype())) << name;
    EXPECT_EQ(g["shape"].get<Shape>(), t.shape()) << name;
    std::vector<double> want;
    if (t.dtype() == DType::I64) {
      for (int64_t v : t.to_vector<int64_t>()) want.push_back(static_cast<double>(v));
    } else {
      want = test::as_doubles(t);
    }
    EXPECT_EQ(g["values"].get<std::vector<double>>(), want) << name;
  }
  // And our reader gives back the same bits.
  TorchFile back(path);
  for (const auto& [name, t] : tensors) {
    Tensor r = Tensor::empty(t.shape(), t.dtype());
    back.read_into(name, r);
    EXPECT_EQ(std::memcmp(r.raw_data(), t.raw_data(), t.nbytes()), 0) << name;
  }
  // Atomic: no temporary file is left beside it.
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find(path + ".tmp"), std::string::npos) << entry.path();
  fs::remove(path);
}

TEST(TorchFile, RefusesToRunAnythingButTheStateDictsOwnCalls) {
  const std::string path = temp_path("evil.pth");
  python("evil " + path);
  test::expect_error([&] { TorchFile f(path); }, {path, "calls posix.system", "not running it"});
  fs::remove(path);
}

TEST(TorchFile, DamagedFilesAreRefusedNamingTheFileAndWhat) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"no_pickle", {"without <archive>/data.pkl"}},
      {"missing_storage", {"tensor 'mix'", "fixture/data/3", "lacks"}},
      {"short_storage", {"fixture/data/1", "holds 6 bytes", "need 8", "truncated"}},
      {"strided", {"'emb.weight' is not contiguous", "contiguous()"}},
      {"truncated_pickle", {"data.pkl ends inside an opcode"}},
      {"unknown_storage", {"torch.ComplexFloatStorage are not supported"}},
      {"big_endian", {"byteorder is 'big'"}},
  };
  for (const auto& [kind, fragments] : cases) {
    SCOPED_TRACE(kind);
    const std::string path = temp_path(kind + ".pth");
    python("broken " + path + " " + kind);
    std::vector<std::string> want = fragments;
    want.push_back(path);
    test::expect_error([&] { TorchFile f(path); }, want);
    fs::remove(path);
  }
  const std::string text = temp_path("text.pth");
  std::ofstream(text) << "not a zip";
  test::expect_error([&] { TorchFile f(text); }, {text, "not a readable zip archive"});
  const std::string old = temp_path("legacy.pth");
  std::ofstream(old, std::ios::binary) << "\x80\x02\x8a\x0a";  // the pre-1.6 format's opening: a pickled magic number
  test::expect_error([&] { open_tensor_file(old); }, {old, "before PyTorch 1.6", "save it again"});
  test::expect_error([&] { open_tensor_file(temp_path("absent.pth")); }, {"absent.pth", "no such file"});
  fs::remove(text);
  fs::remove(old);
}

}  // namespace
}  // namespace rwkv::checkpoint
