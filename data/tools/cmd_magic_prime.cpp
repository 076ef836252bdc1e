// rwkv-data magic-prime: RWKV-LM's sampler prime (data/magic_prime.h).
#include <cstdio>

#include "core/error.h"
#include "data/magic_prime.h"
#include "data/token_dataset.h"
#include "core/cli_args.h"
#include "data/tools/commands.h"

namespace rwkv::data::cli {

int cmd_magic_prime(int argc, char** argv) {
  Args args("rwkv-data magic-prime",
            {{"tokens", "N", "number of tokens in the dataset"},
             {"data", "SPEC", "or: a dataset (prefix, prepare's --output, or a glob of .idx) to count"},
             {"ctx-len", "N", "context length"}},
            argc, argv, 2);
  if (args.help_requested()) {
    std::printf("usage: rwkv-data magic-prime (--tokens N | --data SPEC) --ctx-len N\n%s\n", args.usage().c_str());
    return 0;
  }
  int64_t ctx_len = args.get_int("ctx-len", 0);
  RWKV_CHECK(args.has("ctx-len") && ctx_len > 0, "rwkv-data magic-prime: --ctx-len must be a positive integer",
             "\n  ---> HINT: ", args.usage());
  RWKV_CHECK(args.has("tokens") != args.has("data"), "rwkv-data magic-prime: give exactly one of --tokens and --data");
  int64_t tokens = args.has("tokens") ? args.get_int("tokens", 0) : TokenDataset::open(args.get("data")).num_tokens();
  RWKV_CHECK(tokens > 0, "rwkv-data magic-prime: --tokens must be positive");
  uint64_t prime = magic_prime_for(static_cast<uint64_t>(tokens), static_cast<uint64_t>(ctx_len));
  RWKV_CHECK(prime > 0, "rwkv-data magic-prime: ", tokens, " tokens are fewer than 3 x ctx_len = ", 3 * ctx_len,
             "\n  ---> HINT: use more data or a shorter ctx_len");
  std::printf("magic_prime=%llu tokens=%lld ctx_len=%lld\n", static_cast<unsigned long long>(prime),
              static_cast<long long>(tokens), static_cast<long long>(ctx_len));
  std::printf("RWKV-LM flags: --my_exit_tokens %lld --magic_prime %llu --ctx_len %lld\n", static_cast<long long>(tokens),
              static_cast<unsigned long long>(prime), static_cast<long long>(ctx_len));
  return 0;
}

}  // namespace rwkv::data::cli
