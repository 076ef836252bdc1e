// rwkv-data inspect: what a shard holds, in a form a person can read.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "data/binidx_reader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "core/cli_args.h"
#include "data/tools/commands.h"

namespace rwkv::data::cli {

namespace {
// Shows text on one line: control characters and backslashes escaped.
std::string escape_for_display(const std::string& text, size_t max_chars) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < max_chars; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= max_chars) out += "...";
  return out;
}
}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args("rwkv-data inspect",
            {{"tokenizer", "SPEC", "decode the documents shown with this tokenizer (else print ids)"},
             {"docs", "N", "documents to show from each shard (default: 3)"},
             {"max-chars", "N", "characters of text to show a document (default: 400)"}},
            argc, argv, 2);
  if (args.help_requested() || args.positional().empty()) {
    std::printf("usage: rwkv-data inspect SHARD_PREFIX_OR_GLOB... [flags]\n%s\n", args.usage().c_str());
    return args.help_requested() ? 0 : 2;
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.has("tokenizer")) tokenizer = load_tokenizer(args.get("tokenizer"));
  const int64_t show_docs = args.get_int("docs", 3);
  const size_t max_chars = static_cast<size_t>(std::max<int64_t>(16, args.get_int("max-chars", 400)));

  for (const std::string& spec : args.positional()) {
    for (const std::string& prefix : find_shards(spec)) {
      BinIdxReader shard(prefix);
      const uint64_t docs = shard.num_doc_indices() > 0 ? shard.num_doc_indices() - 1 : 0;
      std::printf("shard %s\n", prefix.c_str());
      std::printf("  files     %s (%llu bytes), %s (%llu bytes)\n", shard.idx_path().c_str(),
                  static_cast<unsigned long long>(file_size(shard.idx_path())), shard.bin_path().c_str(),
                  static_cast<unsigned long long>(shard.bin_bytes()));
      std::printf("  header    magic MMIDIDX\\0\\0, version %llu, dtype %s (code %d, %zu bytes)\n",
                  static_cast<unsigned long long>(shard.version()), token_dtype_name(shard.dtype()),
                  static_cast<int>(shard.dtype()), shard.dtype_size());
      std::printf("  counts    sequences %llu, doc_idx entries %llu (documents %llu), tokens %llu, contiguous %s\n",
                  static_cast<unsigned long long>(shard.num_sequences()),
                  static_cast<unsigned long long>(shard.num_doc_indices()), static_cast<unsigned long long>(docs),
                  static_cast<unsigned long long>(shard.num_tokens()), shard.contiguous() ? "yes" : "no");
      for (uint64_t d = 0; d < docs && static_cast<int64_t>(d) < show_docs; ++d) {
        std::vector<int32_t> ids;
        for (int64_t s = shard.doc_index(d); s < shard.doc_index(d + 1); ++s) {
          size_t at = ids.size();
          ids.resize(at + static_cast<size_t>(shard.sequence_length(static_cast<uint64_t>(s))));
          shard.read_tokens(static_cast<uint64_t>(shard.sequence_pointer(static_cast<uint64_t>(s))) / shard.dtype_size(),
                            static_cast<uint64_t>(shard.sequence_length(static_cast<uint64_t>(s))), ids.data() + at);
        }
        std::printf("  document %llu: %zu tokens, ids [", static_cast<unsigned long long>(d), ids.size());
        for (size_t k = 0; k < ids.size() && k < 16; ++k) std::printf(k ? ", %d" : "%d", ids[k]);
        std::printf("%s]\n", ids.size() > 16 ? ", ..." : "");
        if (tokenizer) {
          std::printf("    text: \"%s\"\n", escape_for_display(tokenizer->decode(ids), max_chars).c_str());
        }
      }
    }
  }
  return 0;
}

}  // namespace rwkv::data::cli
