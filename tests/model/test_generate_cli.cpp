// rwkv-generate as a user runs it: greedy continuation is deterministic and
// starts with the prompt; bad flags and files fail with one line naming the
// flag or file and a non-zero exit.
#include <filesystem>

#include "checkpoint/safetensors.h"
#include "model_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

TEST(GenerateCli, GreedyIsDeterministicAndBadInputFailsClearly) {
  const fs::path dir = test::fresh_temp_dir("rwkv_generate_cli");
  const Rwkv4Shape shape{2, 16, 257, 32};
  Rwkv4Model model(shape, DType::F32);
  test::fill_random(model.params(), 5, -0.5, 0.5);
  checkpoint::NamedTensors tensors;
  for (const NamedTensor& e : model.params().entries()) tensors.emplace_back(e.name, e.value);
  const std::string weights = (dir / "w.safetensors").string();
  checkpoint::write_safetensors(weights, tensors);
  const std::string base = std::string(RWKV_GENERATE_BIN) + " --weights " + weights + " --tokenizer bytes";

  const std::string greedy = base + " --prompt 'Hello there' --tokens 12 --temperature 0";
  const test::CommandResult a = test::run_command(greedy), b = test::run_command(greedy);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.output.rfind("Hello there", 0), 0u) << a.output;

  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --prompt hi --tokens -3", "--tokens expects a count >= 0"},
           {" --prompt hi --tokens many", "--tokens expects an integer"},
           {" --prompt hi --temperature -1", "--temperature expects a value >= 0"},
           {" --prompt hi --top-p 0", "--top-p expects a value in (0, 1]"},
           {" --prompt hi --top-p 1.5", "--top-p expects a value in (0, 1]"},
           {" --prompt hi --colour red", "unknown flag --colour"},
           {"", "--prompt is required"},
           {" --prompt hi stray", "unexpected argument 'stray'"}}) {
    SCOPED_TRACE(args);
    const test::CommandResult r = test::run_command(base + args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("rwkv-generate: error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
  const test::CommandResult missing = test::run_command(std::string(RWKV_GENERATE_BIN) + " --weights " +
                                                        (dir / "none.safetensors").string() + " --tokenizer bytes --prompt hi");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("none.safetensors"), std::string::npos) << missing.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
