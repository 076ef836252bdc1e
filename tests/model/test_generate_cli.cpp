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
           {" --prompt hi stray", "unexpected argument 'stray'"},
           {" --prompt hi --top-k -1", "--top-k expects a count >= 0"},
           {" --prompt hi --samples 0", "--samples expects a count in [1, 4096]"},
           {" --prompt hi --penalty-decay 1.5", "--penalty-decay expects a value in [0, 1]"},
           {" --prompt hi --presence-penalty nan", "--presence-penalty and --frequency-penalty expect finite numbers"},
           {" --prompt hi --stop ''", "--stop expects a non-empty text"}}) {
    SCOPED_TRACE(args);
    const test::CommandResult r = test::run_command(base + args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("rwkv-generate: error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
  // Several samples: each under a header with its seed, prompt first; sample
  // 0 is the single-sample run's text (the same seed), greedy ones are all alike.
  const test::CommandResult one = test::run_command(base + " --prompt 'Hi' --tokens 10 --seed 4");
  const test::CommandResult three = test::run_command(base + " --prompt 'Hi' --tokens 10 --seed 4 --samples 3");
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_EQ(three.output.rfind("=== sample 0 (seed 4)\n" + one.output, 0), 0u) << three.output << "\n" << one.output;
  EXPECT_NE(three.output.find("=== sample 1 (seed 5)\nHi"), std::string::npos) << three.output;
  EXPECT_NE(three.output.find("=== sample 2 (seed 6)\nHi"), std::string::npos) << three.output;

  const test::CommandResult missing = test::run_command(std::string(RWKV_GENERATE_BIN) + " --weights " +
                                                        (dir / "none.safetensors").string() + " --tokenizer bytes --prompt hi");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("none.safetensors"), std::string::npos) << missing.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
