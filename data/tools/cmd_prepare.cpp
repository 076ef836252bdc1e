// rwkv-data prepare: text -> binidx shards (data/prepare.h has the details).
#include <cstdio>

#include "core/log.h"
#include "data/binidx_format.h"
#include "core/file_io.h"
#include "data/magic_prime.h"
#include "data/prepare.h"
#include "core/cli_args.h"
#include "data/tools/commands.h"

namespace rwkv::data::cli {

int cmd_prepare(int argc, char** argv) {
  Args args("rwkv-data prepare",
            {{"input", "PATH_OR_GLOB", "input file(s), repeatable: .txt .jsonl .jsonl.zst (positional arguments work too)"},
             {"output", "PREFIX", "output prefix: shards are PREFIX_00000.bin/.idx, ..."},
             {"tokenizer", "SPEC", "bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World), also hf:PATH, world:PATH"},
             {"text-key", "NAME", "JSON field with the text (default: text)"},
             {"shard-size", "SIZE", "close a shard once its .bin reaches SIZE (default: 1G)"},
             {"threads", "N", "tokenizer threads (default: every core)"},
             {"dtype", "NAME", "token dtype (default: uint16 below 65500 tokens, else int32)"},
             {"ctx-len", "N", "also print the magic prime for this ctx_len"},
             {"no-eod", "", "do not end documents with the end-of-document token"},
             {"overwrite", "", "replace existing shards with the same prefix"},
             {"progress-seconds", "S", "seconds between progress lines (default: 5; 0: none)"}},
            argc, argv, 2);
  if (args.help_requested()) {
    std::printf("usage: rwkv-data prepare --input FILES --output PREFIX --tokenizer SPEC [flags]\n%s\n", args.usage().c_str());
    return 0;
  }
  PrepareOptions options;
  options.inputs = args.get_all("input");
  for (const std::string& p : args.positional()) options.inputs.push_back(p);
  options.output_prefix = args.require("output");
  std::string tokenizer_spec = args.require("tokenizer");
  options.text_key = args.get("text-key", "text");
  if (args.has("shard-size")) options.shard_bytes = parse_byte_size(args.get("shard-size"), "--shard-size");
  options.threads = static_cast<int>(args.get_int("threads", 0));
  RWKV_CHECK(options.threads >= 0, "rwkv-data prepare: --threads must be 0 (every core) or more");
  if (args.has("dtype")) options.dtype = parse_token_dtype(args.get("dtype"));
  options.append_eod = !args.has("no-eod");
  options.overwrite = args.has("overwrite");
  options.progress_seconds = args.get_double("progress-seconds", 5.0);

  auto tokenizer = load_tokenizer(tokenizer_spec);
  PrepareStats stats = prepare_dataset(options, *tokenizer);

  std::printf("prepared %zu shard(s) at %s_NNNNN: documents=%llu tokens=%llu text_bytes=%llu empty_skipped=%llu "
              "seconds=%.2f MB/s=%.2f\n",
              stats.shard_prefixes.size(), options.output_prefix.c_str(),
              static_cast<unsigned long long>(stats.documents), static_cast<unsigned long long>(stats.tokens),
              static_cast<unsigned long long>(stats.text_bytes), static_cast<unsigned long long>(stats.empty_documents),
              stats.seconds, static_cast<double>(stats.text_bytes) / 1e6 / std::max(stats.seconds, 1e-9));
  if (args.has("ctx-len")) {
    int64_t ctx_len = args.get_int("ctx-len", 0);
    RWKV_CHECK(ctx_len > 0, "rwkv-data prepare: --ctx-len must be positive");
    uint64_t prime = magic_prime_for(stats.tokens, static_cast<uint64_t>(ctx_len));
    if (prime > 0) {
      std::printf("magic_prime=%llu ctx_len=%lld\n", static_cast<unsigned long long>(prime), static_cast<long long>(ctx_len));
    } else {
      log_warn("prepare: ", stats.tokens, " tokens are fewer than 3 x ctx_len=", ctx_len, ": no magic prime");
    }
  }
  return 0;
}

}  // namespace rwkv::data::cli
