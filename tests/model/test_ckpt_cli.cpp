// rwkv-ckpt as a user runs it: inspect, verify, export and import of a
// committed checkpoint through the binary, and one clear line with a
// non-zero exit for each bad command, flag or path (a damaged file fails
// verify naming it).
#include <filesystem>
#include <fstream>

#include "model_test_util.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

TEST(CkptCli, EveryCommandWorksAndBadInputFailsClearly) {
  const fs::path dir = test::fresh_temp_dir("rwkv_ckpt_cli");
  const Rwkv4Shape shape{2, 16, 37, 32};
  ParameterStore params = declare_rwkv4_parameters(shape, DType::F32);
  test::fill_random(params, 9);
  const std::string saved = test::save_checkpoint(params, (dir / "ckpt").string(), 3);
  const std::string bin = RWKV_CKPT_BIN;

  const test::CommandResult inspect = test::run_command(bin + " inspect " + saved);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("step 3"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("L2 C16 F32 V37"), std::string::npos) << inspect.output;
  const test::CommandResult verify = test::run_command(bin + " verify " + saved);
  ASSERT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find(": ok (step 3"), std::string::npos) << verify.output;
  const std::string weights = (dir / "w.safetensors").string();
  const test::CommandResult exported = test::run_command(bin + " export " + saved + " --out " + weights + " --dtype bf16");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find(str_cat("exported ", params.entries().size(), " tensors (bf16)")), std::string::npos)
      << exported.output;
  const test::CommandResult imported = test::run_command(bin + " import " + weights + " --out " + (dir / "back").string());
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("--resume "), std::string::npos) << imported.output;
  // The reference's own format: export, inspect and import a .pth.
  const std::string pth = (dir / "w.pth").string();
  const test::CommandResult to_pth = test::run_command(bin + " export " + saved + " --out " + pth);
  ASSERT_EQ(to_pth.exit_code, 0) << to_pth.output;
  for (const auto& [file, format, dtype] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {weights, "(safetensors)", "bf16  "}, {pth, "(PyTorch state dict)", "f32   "}}) {
    const test::CommandResult shown = test::run_command(bin + " inspect " + file);
    ASSERT_EQ(shown.exit_code, 0) << shown.output;
    for (const std::string& want : {format, str_cat(params.entries().size(), " tensors, ", params.numel(), " parameters"),
                                    std::string("model RWKV-4 L2 C16 F32 V37"), std::string("blocks.1.att.time_mix_k"),
                                    dtype + "[1, 1, 16]"})
      EXPECT_NE(shown.output.find(want), std::string::npos) << want << " in\n" << shown.output;
  }
  const test::CommandResult from_pth = test::run_command(bin + " import " + pth + " --out " + (dir / "back_pth").string());
  ASSERT_EQ(from_pth.exit_code, 0) << from_pth.output;
  const test::CommandResult converted =
      test::run_command(bin + " convert " + pth + " --out " + (dir / "c.safetensors").string() + " --dtype bf16");
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  EXPECT_NE(converted.output.find(str_cat("converted ", params.entries().size(), " tensors")), std::string::npos)
      << converted.output;

  for (const auto& [args, message, code] : std::vector<std::tuple<std::string, std::string, int>>{
           {"", "usage: rwkv-ckpt COMMAND", 2},
           {"frobnicate " + saved, "unknown command 'frobnicate'", 2},
           {"inspect", "inspect needs a path", 2},
           {"export " + saved, "export needs --out", 2},
           {"export " + saved + " --out x.safetensors --dtype f16", "--dtype must be f32 or bf16", 2},
           {"inspect " + saved + " --colour", "unknown flag --colour", 2},
           {"verify " + saved + " --json", "`rwkv-ckpt verify` takes no flags", 2},
           {"inspect " + saved + " " + saved, "unexpected argument '" + saved + "'", 2},
           {"inspect " + saved + " --out x", "unknown flag --out", 2},  // --out means nothing to inspect
           {"export " + saved + " --out", "--out needs a value", 2},
           {"verify -x", "unexpected argument '-x'", 2},
           {"import " + weights, "import needs --out", 2},
           {"convert " + weights, "convert needs --out", 2},
           {"convert " + weights + " --out y.pth --dtype f16", "--dtype must be f32 or bf16", 2},
           {"convert " + saved + " --out y.pth", "a directory, not a weights file", 1},
           {"verify " + (dir / "nowhere").string(), "nowhere", 1},
           {"import " + (dir / "none.safetensors").string() + " --out " + (dir / "x").string(), "none.safetensors", 1}}) {
    SCOPED_TRACE(args);
    const test::CommandResult r = test::run_command(bin + " " + args);
    EXPECT_EQ(r.exit_code, code) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
  // A damaged shard fails verify, naming the file; the checkpoint is left as it was.
  fs::path shard;
  for (const fs::directory_entry& f : fs::directory_iterator(saved))
    if (f.path().extension() == ".safetensors") shard = f.path();
  ASSERT_FALSE(shard.empty());
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(shard) - 1));
    f.put('\x7f');
  }
  const test::CommandResult damaged = test::run_command(bin + " verify " + saved);
  EXPECT_EQ(damaged.exit_code, 1) << damaged.output;
  EXPECT_NE(damaged.output.find(shard.filename().string()), std::string::npos) << damaged.output;
  EXPECT_NE(damaged.output.find("rwkv-ckpt: error: "), std::string::npos) << damaged.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
