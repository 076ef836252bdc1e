// `rwkv-data prepare`: text files -> tokenizer -> binidx shards.
//
// Documents are read in input order, tokenized in parallel, and written in
// input order (ordered_pipeline.h), each followed by the end-of-document token.
// A shard is closed once its .bin reaches shard_bytes, at a document boundary.
// Shards are named PREFIX_00000, PREFIX_00001, ... (.bin + .idx). Every shard is
// written under a temporary name and all of them are renamed only after the
// last one is complete, so a failed run leaves no shard under a final name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/binidx_format.h"
#include "data/tokenizer.h"

namespace rwkv::data {

struct PrepareOptions {
  std::vector<std::string> inputs;      // paths or globs (text_sources.h lists the formats)
  std::string output_prefix;            // shards are OUTPUT_PREFIX_00000.{bin,idx}, ...
  std::string text_key = "text";        // the JSON field holding the text
  uint64_t shard_bytes = 1000000000;    // close a shard once its .bin reaches this size
  int threads = 0;                      // tokenizer threads; 0: every core
  bool append_eod = true;               // end each document with the tokenizer's eod id
  bool overwrite = false;               // replace existing shards with this prefix
  double progress_seconds = 5.0;        // interval of the progress line; 0: none
  std::optional<TokenDType> dtype;      // default: uint16 below 65500 tokens, else int32
};

struct PrepareStats {
  uint64_t documents = 0;
  uint64_t empty_documents = 0;  // skipped: no text
  uint64_t tokens = 0;
  uint64_t text_bytes = 0;       // UTF-8 bytes of document text tokenized
  double seconds = 0;
  std::vector<std::string> shard_prefixes;
};

PrepareStats prepare_dataset(const PrepareOptions& options, const Tokenizer& tokenizer);

std::string shard_prefix(const std::string& output_prefix, size_t index);

// Shard prefixes for a dataset spec: an exact prefix (PREFIX.idx exists), the
// output prefix of `prepare` (PREFIX_NNNNN.idx), or a glob of .idx files.
// Sorted; throws naming the spec when nothing matches.
std::vector<std::string> find_shards(const std::string& spec);

}  // namespace rwkv::data
