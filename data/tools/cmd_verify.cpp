// rwkv-data verify: reads every token of every shard and checks it.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/binidx_reader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "core/cli_args.h"
#include "data/tools/commands.h"

namespace rwkv::data::cli {

int cmd_verify(int argc, char** argv) {
  Args args("rwkv-data verify",
            {{"tokenizer", "SPEC", "check ids against this tokenizer's vocabulary and end-of-document id"},
             {"vocab-size", "N", "check every id is below N (instead of --tokenizer)"},
             {"eod", "ID", "end-of-document id (default: the tokenizer's, else 0)"}},
            argc, argv, 2);
  if (args.help_requested() || args.positional().empty()) {
    std::printf("usage: rwkv-data verify SHARD_PREFIX_OR_GLOB... [--tokenizer SPEC | --vocab-size N]\n%s\n",
                args.usage().c_str());
    return args.help_requested() ? 0 : 2;
  }
  int64_t vocab = args.get_int("vocab-size", 0);
  int64_t eod = args.get_int("eod", 0);
  if (args.has("tokenizer")) {
    auto tokenizer = load_tokenizer(args.get("tokenizer"));
    vocab = tokenizer->vocab_size();
    if (!args.has("eod")) eod = tokenizer->eod_id();
  }
  uint64_t shards = 0, tokens = 0, documents = 0, without_eod = 0;
  std::vector<int32_t> buffer(1 << 20);
  for (const std::string& spec : args.positional()) {
    for (const std::string& prefix : find_shards(spec)) {
      BinIdxReader shard(prefix);  // validates the index against both files
      // Every token of every sequence, in chunks.
      for (uint64_t s = 0; s < shard.num_sequences(); ++s) {
        uint64_t first = static_cast<uint64_t>(shard.sequence_pointer(s)) / shard.dtype_size();
        uint64_t left = static_cast<uint64_t>(shard.sequence_length(s));
        int32_t last = -1;
        while (left > 0) {
          uint64_t take = std::min<uint64_t>(left, buffer.size());
          shard.read_tokens(first, take, buffer.data(), vocab);
          last = buffer[take - 1];
          first += take;
          left -= take;
        }
        if (last != eod) ++without_eod;
      }
      std::printf("ok %s: %llu sequences, %llu tokens, dtype %s\n", prefix.c_str(),
                  static_cast<unsigned long long>(shard.num_sequences()),
                  static_cast<unsigned long long>(shard.num_tokens()), token_dtype_name(shard.dtype()));
      ++shards;
      tokens += shard.num_tokens();
      documents += shard.num_sequences();
    }
  }
  if (without_eod > 0) {
    log_warn("verify: ", without_eod, " of ", documents, " sequences do not end with the end-of-document id ", eod,
             " (fine for data prepared with --no-eod or by other tools)");
  }
  std::printf("verified %llu shard(s): %llu sequences, %llu tokens%s\n", static_cast<unsigned long long>(shards),
              static_cast<unsigned long long>(documents), static_cast<unsigned long long>(tokens),
              vocab > 0 ? str_cat(", every id < ", vocab).c_str() : " (no vocabulary given: ids not range-checked)");
  return 0;
}

}  // namespace rwkv::data::cli
