// rwkv-ckpt: look into, check, export and import checkpoints.
//
//   rwkv-ckpt inspect DIR|FILE.safetensors|FILE.pth
//   rwkv-ckpt verify DIR
//   rwkv-ckpt export DIR --out FILE.safetensors|FILE.pth [--dtype f32|bf16]
//   rwkv-ckpt convert FILE.pth --out FILE.safetensors [--dtype f32|bf16]   (or the other way)
//   rwkv-ckpt import FILE.safetensors|FILE.pth --out ROOT  (then: rwkv-train ... --resume ROOT/step_00000000)
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/torch_file.h"
#include "core/cli_args.h"
#include "core/error.h"
#include "trainer/checkpoint_export.h"

namespace {

const char* kUsage =
    "usage: rwkv-ckpt COMMAND ...\n"
    "  inspect DIR|FILE                  step, layout, files, tensors of a checkpoint; or the tensors of a\n"
    "                                    weights file (safetensors or .pth)\n"
    "  verify DIR                        check the commit marker, manifest, sizes and hashes\n"
    "  export DIR --out FILE [--dtype f32|bf16]\n"
    "                                    one file with the reference RWKV-4 names and shapes: a PyTorch\n"
    "                                    state dict if FILE ends in .pth or .pt (ChatRWKV loads it), else safetensors\n"
    "  convert FILE --out FILE2 [--dtype f32|bf16]\n"
    "                                    a weights file in the other format (.pth <-> .safetensors, by FILE2's name)\n"
    "  import FILE --out ROOT            a step-0 checkpoint under ROOT from RWKV-4 weights (safetensors, or\n"
    "                                    the reference's .pth); fine-tune with:\n"
    "                                    rwkv-train --config ... --resume ROOT/step_00000000\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "rwkv-ckpt: error: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command != "inspect" && command != "verify" && command != "export" && command != "import" && command != "convert")
    usage_error("unknown command '" + command + "'");
  std::string target, out, dtype;
  try {
    // Flags apply where they mean something (--out: export, import, convert;
    // --dtype: export, convert); elsewhere they are refused rather than ignored.
    std::vector<rwkv::cli::Flag> flags;
    if (command == "export" || command == "import" || command == "convert")
      flags.push_back({"out", "PATH", "the file or root to write"});
    if (command == "export") flags.push_back({"dtype", "f32|bf16", "the exported tensors' dtype (default f32)"});
    if (command == "convert") flags.push_back({"dtype", "f32|bf16", "cast the float tensors (default: keep each one's)"});
    const rwkv::cli::Args args("rwkv-ckpt " + command, flags, argc, argv, 2);
    if (args.help_requested()) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    for (size_t i = 0; i < args.positional().size(); ++i) {
      const std::string& a = args.positional()[i];
      if (i > 0 || a.empty() || a[0] == '-') usage_error("unexpected argument '" + a + "'");
    }
    if (!args.positional().empty()) target = args.positional()[0];
    out = args.get("out");
    dtype = args.get("dtype", command == "convert" ? "" : "f32");
  } catch (const rwkv::Error& e) {
    usage_error(e.what());
  }
  if (target.empty()) usage_error(command + " needs a path");
  try {
    using namespace rwkv;
    if (command == "inspect" && std::filesystem::is_regular_file(target)) {
      // A weights file (safetensors or .pth) rather than a checkpoint directory.
      const std::unique_ptr<checkpoint::TensorSource> file = checkpoint::open_tensor_file(target);
      const bool torch = dynamic_cast<const checkpoint::TorchFile*>(file.get()) != nullptr;
      int64_t numel = 0;
      for (const checkpoint::TensorSource::Info& t : file->tensors()) numel += shape_numel(t.shape);
      std::printf("weights %s (%s)\n  %zu tensors, %lld parameters\n", target.c_str(),
                  torch ? "PyTorch state dict" : "safetensors", file->tensors().size(), static_cast<long long>(numel));
      if (file->find("emb.weight") && file->find("blocks.0.ffn.key.weight")) {
        const Rwkv4Shape s = shape_of(*file);
        std::printf("  model RWKV-4 L%lld C%lld F%lld V%lld\n", static_cast<long long>(s.n_layer),
                    static_cast<long long>(s.n_embd), static_cast<long long>(s.dim_ffn), static_cast<long long>(s.vocab_size));
      }
      for (const checkpoint::TensorSource::Info& t : file->tensors())
        std::printf("  %-40s %-5s %s\n", t.name.c_str(), dtype_name(t.dtype), shape_str(t.shape).c_str());
      return 0;
    }
    if (command == "inspect" || command == "verify") {
      checkpoint::LoadedCheckpoint ckpt(target);  // verifies
      const checkpoint::Manifest& m = ckpt.manifest();
      if (command == "verify") {
        std::printf("%s: ok (step %lld, %zu files, every size and XXH3 hash matches)\n", target.c_str(),
                    static_cast<long long>(m.step), m.files.size());
        return 0;
      }
      const Rwkv4Shape s = trainer::shape_of(m, target);
      int64_t params = 0;
      for (const checkpoint::ManifestTensor& t : m.tensors)
        if (t.kind == "param") params += shape_numel(t.shape);
      std::printf("checkpoint %s\n  step %lld, %lld tokens, config digest %s\n  written by dp=%lld x tp=%lld x pp=%lld%s\n"
                  "  model RWKV-4 L%lld C%lld F%lld V%lld: %lld parameters\n  %zu tensors (param, adam_m, adam_v):\n",
                  target.c_str(), static_cast<long long>(m.step), static_cast<long long>(m.tokens), m.config_digest.c_str(),
                  static_cast<long long>(m.layout.dp), static_cast<long long>(m.layout.tp), static_cast<long long>(m.layout.pp),
                  m.layout.zero ? " (ZeRO-1)" : "", static_cast<long long>(s.n_layer), static_cast<long long>(s.n_embd),
                  static_cast<long long>(s.dim_ffn), static_cast<long long>(s.vocab_size), static_cast<long long>(params),
                  m.tensors.size());
      for (const checkpoint::ManifestFile& f : m.files)
        std::printf("  file %-24s rank %-4lld %12llu bytes  xxh3 %s\n", f.name.c_str(), static_cast<long long>(f.rank),
                    static_cast<unsigned long long>(f.bytes), f.xxh3.c_str());
      return 0;
    }
    if (command == "export") {
      if (out.empty()) usage_error("export needs --out FILE.safetensors (or FILE.pth)");
      if (dtype != "f32" && dtype != "bf16") usage_error("--dtype must be f32 or bf16, got '" + dtype + "'");
      checkpoint::LoadedCheckpoint ckpt(target);
      const int64_t n = trainer::export_weights(ckpt, out, dtype == "bf16" ? DType::BF16 : DType::F32);
      std::printf("exported %lld tensors (%s) to %s\n", static_cast<long long>(n), dtype.c_str(), out.c_str());
      return 0;
    }
    if (command == "convert") {
      if (out.empty()) usage_error("convert needs --out FILE.safetensors or FILE.pth");
      if (!dtype.empty() && dtype != "f32" && dtype != "bf16") usage_error("--dtype must be f32 or bf16, got '" + dtype + "'");
      std::optional<DType> cast;
      if (!dtype.empty()) cast = dtype == "bf16" ? DType::BF16 : DType::F32;
      const int64_t n = trainer::convert_weights(target, out, cast);
      std::printf("converted %lld tensors of %s to %s%s\n", static_cast<long long>(n), target.c_str(), out.c_str(),
                  dtype.empty() ? "" : (" (" + dtype + ")").c_str());
      return 0;
    }
    if (command == "import") {
      if (out.empty()) usage_error("import needs --out ROOT (a checkpoint directory root)");
      const std::string dir = trainer::import_weights(target, out);
      std::printf("imported %s as %s\n  ---> fine-tune with: rwkv-train --config ... --resume %s\n", target.c_str(),
                  dir.c_str(), dir.c_str());
      return 0;
    }
    return 2;  // (every command returned above)
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-ckpt: error: %s\n", e.what());
    return 1;
  }
}
