// Throughput of `rwkv-data prepare` in MB/s of document text, for each
// tokenizer and thread count. Run from the repository root:
//
//   scripts/data/make_offline_corpus.sh        # once: data/corpus/offline_corpus.jsonl.zst
//   build/bench/data/rwkv-bench-data [--input FILE]... [--repeat N] [--threads 1,2]
//                                    [--tokenizer SPEC]...
//
// The input list is repeated N times (default 4) so that a run is long enough
// to time and the tokenizers' word caches are warm, as they are on a real corpus.
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "core/file_io.h"
#include "data/prepare.h"
#include "data/tokenizer.h"

namespace {

std::vector<int> parse_thread_list(const std::string& text) {
  std::vector<int> threads;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) threads.push_back(std::stoi(item));
  return threads;
}

int run(int argc, char** argv) {
  using namespace rwkv::data;
  std::vector<std::string> inputs, tokenizers;
  int repeat = 4;
  std::vector<int> thread_counts = {1, rwkv::hardware_threads()};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      RWKV_CHECK(i + 1 < argc, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--input") inputs.push_back(value());
    else if (arg == "--tokenizer") tokenizers.push_back(value());
    else if (arg == "--repeat") repeat = std::stoi(value());
    else if (arg == "--threads") thread_counts = parse_thread_list(value());
    else RWKV_FAIL("unknown flag ", arg, "\n  ---> HINT: --input FILE --tokenizer SPEC --repeat N --threads 1,2");
  }
  if (inputs.empty()) {
    const std::string corpus = "data/corpus/offline_corpus.jsonl.zst";
    RWKV_CHECK(rwkv::file_exists(corpus), corpus, " not found\n  ---> HINT: run scripts/data/make_offline_corpus.sh from the "
               "repository root first, or pass --input FILE");
    inputs.push_back(corpus);
  }
  if (tokenizers.empty()) tokenizers = {"data/vocab/20B_tokenizer.json", "data/vocab/rwkv_vocab_v20230424.txt", "bytes"};

  std::vector<std::string> repeated;
  for (int r = 0; r < repeat; ++r) repeated.insert(repeated.end(), inputs.begin(), inputs.end());
  const std::string out_dir = (std::filesystem::temp_directory_path() / "rwkv-bench-data").string();
  std::filesystem::create_directories(out_dir);
  rwkv::set_log_level(rwkv::LogLevel::Warn);

  std::printf("prepare throughput (MB/s of document text), %d core(s); input %s x %d\n", rwkv::hardware_threads(),
              inputs.front().c_str(), repeat);
  std::printf("%-46s %7s %9s %11s %8s %8s\n", "tokenizer", "threads", "documents", "tokens", "seconds", "MB/s");
  for (const std::string& spec : tokenizers) {
    auto tokenizer = load_tokenizer(spec);
    for (int threads : thread_counts) {
      PrepareOptions options;
      options.inputs = repeated;
      options.output_prefix = out_dir + "/bench";
      options.threads = threads;
      options.overwrite = true;
      options.progress_seconds = 0;
      PrepareStats stats = prepare_dataset(options, *tokenizer);
      std::printf("%-46s %7d %9llu %11llu %8.2f %8.2f\n", tokenizer->name().c_str(), threads,
                  static_cast<unsigned long long>(stats.documents), static_cast<unsigned long long>(stats.tokens),
                  stats.seconds, static_cast<double>(stats.text_bytes) / 1e6 / stats.seconds);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(out_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-bench-data: error: %s\n", e.what());
    return 1;
  }
}
