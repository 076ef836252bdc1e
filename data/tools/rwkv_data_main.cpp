// rwkv-data: prepares and checks training data. `rwkv-data help` lists the
// subcommands; docs/data.md has examples.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "data/tools/commands.h"

namespace {

const char* kUsage =
    "usage: rwkv-data COMMAND [flags]   (rwkv-data COMMAND --help for its flags)\n"
    "\n"
    "  prepare          tokenize .txt / .jsonl / .jsonl.zst files into binidx shards\n"
    "  inspect          print a shard's header, counts and first documents\n"
    "  verify           check shards end to end (structure, token range, end-of-document)\n"
    "  magic-prime      RWKV-LM's magic prime for a token count (or dataset) and ctx_len\n"
    "  train-tokenizer  train a byte-level BPE and write a Hugging Face tokenizer.json\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace rwkv::data::cli;
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  try {
    if (command == "prepare") return cmd_prepare(argc, argv);
    if (command == "inspect") return cmd_inspect(argc, argv);
    if (command == "verify") return cmd_verify(argc, argv);
    if (command == "magic-prime") return cmd_magic_prime(argc, argv);
    if (command == "train-tokenizer") return cmd_train_tokenizer(argc, argv);
    std::fprintf(stderr, "rwkv-data: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-data %s: error: %s\n", command.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-data %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
