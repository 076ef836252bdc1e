#include "data/prepare.h"

#include <filesystem>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "core/timer.h"
#include "data/binidx_writer.h"
#include "core/file_io.h"
#include "data/ordered_pipeline.h"
#include "data/text_sources.h"

namespace rwkv::data {

namespace {

// A batch is about this much raw input: large enough to amortize the hand-offs
// between threads, small enough to keep every core busy and memory bounded.
constexpr size_t kBatchPayloadBytes = 1 << 20;
constexpr size_t kBatchMaxRecords = 4096;

struct RecordBatch {
  std::vector<RawRecord> records;
  uint64_t file_bytes_consumed = 0;  // input progress when the batch was read
};

struct TokenizedBatch {
  std::vector<int32_t> tokens;           // every document's tokens back to back
  std::vector<uint64_t> document_sizes;  // tokens per document
  uint64_t text_bytes = 0;
  uint64_t empty_documents = 0;
  uint64_t file_bytes_consumed = 0;
};

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lds", s);
  }
  return text;
}

std::string format_count(double value) {
  char text[32];
  if (value >= 1e9) std::snprintf(text, sizeof text, "%.2fB", value / 1e9);
  else if (value >= 1e6) std::snprintf(text, sizeof text, "%.2fM", value / 1e6);
  else if (value >= 1e4) std::snprintf(text, sizeof text, "%.1fK", value / 1e3);
  else std::snprintf(text, sizeof text, "%.0f", value);
  return text;
}

std::vector<std::string> existing_numbered_shards(const std::string& output_prefix) {
  return expand_glob(output_prefix + "_[0-9][0-9][0-9][0-9][0-9].idx");
}

}  // namespace

std::string shard_prefix(const std::string& output_prefix, size_t index) {
  char number[16];
  std::snprintf(number, sizeof number, "_%05zu", index);
  return output_prefix + number;
}

std::vector<std::string> find_shards(const std::string& spec) {
  std::string prefix = strip_binidx_extension(spec);
  if (file_exists(idx_path(prefix))) return {prefix};
  std::vector<std::string> prefixes;
  std::vector<std::string> idx_files = existing_numbered_shards(prefix);
  if (idx_files.empty() && spec.find_first_of("*?[") != std::string::npos) {
    for (const std::string& path : expand_glob(spec)) {
      if (path.size() > 4 && path.compare(path.size() - 4, 4, ".idx") == 0) idx_files.push_back(path);
    }
  }
  for (const std::string& path : idx_files) prefixes.push_back(strip_binidx_extension(path));
  std::sort(prefixes.begin(), prefixes.end());
  RWKV_CHECK(!prefixes.empty(), "data ", spec, ": no binidx shard found (looked for ", idx_path(prefix), " and ",
             prefix, "_NNNNN.idx)\n  ---> HINT: pass the --output prefix given to `rwkv-data prepare`, one shard's prefix, "
             "or a quoted glob of .idx files");
  return prefixes;
}

PrepareStats prepare_dataset(const PrepareOptions& options, const Tokenizer& tokenizer) {
  Timer timer;
  RWKV_CHECK(!options.output_prefix.empty(), "prepare: --output is required\n  ---> HINT: e.g. --output data/out/pile");
  RWKV_CHECK(options.shard_bytes > 0, "prepare: --shard-size must be positive");
  std::vector<InputFile> inputs = resolve_inputs(options.inputs);

  std::vector<std::string> previous = existing_numbered_shards(options.output_prefix);
  RWKV_CHECK(previous.empty() || options.overwrite, "prepare: ", previous.front(),
             " already exists\n  ---> HINT: pass --overwrite to replace the shards with prefix ", options.output_prefix,
             ", or choose another --output");

  // Users expect `--output runs/x/data/train` to work without a mkdir first.
  const std::filesystem::path output_dir = std::filesystem::path(options.output_prefix).parent_path();
  if (!output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(output_dir, ec);
    RWKV_CHECK(!ec, "prepare: cannot create the output directory ", output_dir.string(), ": ", ec.message(),
               "\n  ---> HINT: choose an --output under a writable directory");
  }

  const TokenDType dtype = options.dtype.value_or(token_dtype_for_vocab(tokenizer.vocab_size()));
  const int32_t eod = tokenizer.eod_id();
  const int threads = options.threads > 0 ? options.threads : hardware_threads();
  log_info("prepare: ", inputs.size(), " input file(s), ", format_si_bytes(static_cast<double>(RecordReader(inputs).total_file_bytes())),
           " on disk; tokenizer ", tokenizer.name(), " (vocab ", tokenizer.vocab_size(), ", eod ", eod, "); dtype ",
           token_dtype_name(dtype), "; ", threads, " thread(s); shards of ", format_si_bytes(static_cast<double>(options.shard_bytes)));

  RecordReader reader(inputs);
  PrepareStats stats;
  std::vector<std::unique_ptr<BinIdxWriter>> finished;
  std::unique_ptr<BinIdxWriter> current;
  Timer since_progress;
  uint64_t file_bytes_done = 0;

  auto print_progress = [&](bool final_line) {
    double seconds = timer.seconds();
    double rate = static_cast<double>(stats.text_bytes) / std::max(seconds, 1e-9);
    double fraction = reader.total_file_bytes() > 0
                          ? static_cast<double>(file_bytes_done) / static_cast<double>(reader.total_file_bytes())
                          : 1.0;
    double eta = fraction > 0 ? seconds * (1.0 - fraction) / fraction : -1;
    log_info("prepare: ", final_line ? "done " : "", "docs=", format_count(static_cast<double>(stats.documents)),
             " tokens=", format_count(static_cast<double>(stats.tokens)),
             " text=", format_si_bytes(static_cast<double>(stats.text_bytes)), " rate=", format_si_bytes(rate), "/s",
             " input=", static_cast<int>(fraction * 100.0 + 0.5), "%", final_line ? "" : " eta=",
             final_line ? "" : format_duration(eta), " shards=", finished.size() + (current ? 1 : 0),
             final_line ? str_cat(" elapsed=", format_duration(seconds)) : "");
  };

  auto produce = [&](RecordBatch& batch) {
    size_t payload = 0;
    RawRecord record;
    while (batch.records.size() < kBatchMaxRecords && payload < kBatchPayloadBytes && reader.next(record)) {
      payload += record.payload.size();
      batch.records.push_back(std::move(record));
    }
    batch.file_bytes_consumed = reader.file_bytes_consumed();
    return !batch.records.empty();
  };

  auto transform = [&](RecordBatch&& batch) {
    TokenizedBatch out;
    out.file_bytes_consumed = batch.file_bytes_consumed;
    for (const RawRecord& record : batch.records) {
      std::string text = record_text(record, inputs, options.text_key);
      if (text.empty()) {
        ++out.empty_documents;
        continue;
      }
      size_t before = out.tokens.size();
      try {
        tokenizer.encode(text, out.tokens);
      } catch (const Error& e) {
        RWKV_FAIL(record_position(record, inputs), record.is_json ? str_cat(" (field \"", options.text_key, "\")") : "",
                  ": ", e.what());
      }
      if (options.append_eod) out.tokens.push_back(eod);
      out.document_sizes.push_back(out.tokens.size() - before);
      out.text_bytes += text.size();
    }
    return out;
  };

  auto consume = [&](TokenizedBatch&& batch) {
    size_t offset = 0;
    for (uint64_t size : batch.document_sizes) {
      if (!current) current = std::make_unique<BinIdxWriter>(shard_prefix(options.output_prefix, finished.size()), dtype);
      current->add_document(std::span<const int32_t>(batch.tokens.data() + offset, size));
      offset += size;
      ++stats.documents;
      stats.tokens += size;
      if (current->bin_bytes() >= options.shard_bytes) {
        current->finish();
        finished.push_back(std::move(current));
      }
    }
    stats.text_bytes += batch.text_bytes;
    stats.empty_documents += batch.empty_documents;
    file_bytes_done = batch.file_bytes_consumed;
    if (options.progress_seconds > 0 && since_progress.seconds() >= options.progress_seconds) {
      print_progress(false);
      since_progress.reset();
    }
  };

  run_ordered_pipeline<RecordBatch, TokenizedBatch>(threads, static_cast<size_t>(2 * threads + 2), produce, transform,
                                                    consume);

  if (current) {
    current->finish();
    finished.push_back(std::move(current));
  }
  RWKV_CHECK(!finished.empty(), "prepare: the inputs hold no document with text (", stats.empty_documents,
             " empty)\n  ---> HINT: check --text-key and the input files");
  // Every shard is complete: now they may appear under their final names.
  for (auto& writer : finished) {
    writer->commit();
    stats.shard_prefixes.push_back(writer->prefix());
  }
  // Shards of an earlier, longer run with the same prefix would otherwise be
  // picked up as part of this dataset.
  for (const std::string& old_idx : previous) {
    std::string prefix = strip_binidx_extension(old_idx);
    if (std::find(stats.shard_prefixes.begin(), stats.shard_prefixes.end(), prefix) == stats.shard_prefixes.end()) {
      remove_file_if_exists(idx_path(prefix));
      remove_file_if_exists(bin_path(prefix));
    }
  }
  file_bytes_done = reader.total_file_bytes();
  stats.seconds = timer.seconds();
  if (options.progress_seconds > 0) print_progress(true);
  return stats;
}

}  // namespace rwkv::data
