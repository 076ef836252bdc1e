// rwkv-data train-tokenizer: a byte-level BPE as a Hugging Face tokenizer.json.
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/bpe_tokenizer.h"
#include "data/bpe_trainer.h"
#include "core/file_io.h"
#include "data/text_sources.h"
#include "core/cli_args.h"
#include "data/tools/commands.h"

namespace rwkv::data::cli {

int cmd_train_tokenizer(int argc, char** argv) {
  Args args("rwkv-data train-tokenizer",
            {{"input", "PATH_OR_GLOB", "training text, repeatable: .txt .jsonl .jsonl.zst (positional works too)"},
             {"output", "PATH.json", "where to write the tokenizer.json"},
             {"vocab-size", "N", "tokens in the vocabulary, <|endoftext|> and the 256 bytes included (default: 8192)"},
             {"min-frequency", "N", "never merge a pair seen fewer times (default: 2)"},
             {"text-key", "NAME", "JSON field with the text (default: text)"}},
            argc, argv, 2);
  if (args.help_requested()) {
    std::printf("usage: rwkv-data train-tokenizer --input FILES --output PATH.json [--vocab-size N]\n%s\n",
                args.usage().c_str());
    return 0;
  }
  std::vector<std::string> patterns = args.get_all("input");
  for (const std::string& p : args.positional()) patterns.push_back(p);
  std::string output = args.require("output");
  BpeTrainerOptions options;
  options.vocab_size = args.get_int("vocab-size", 8192);
  options.min_frequency = args.get_int("min-frequency", 2);
  std::string text_key = args.get("text-key", "text");

  Timer timer;
  std::vector<InputFile> inputs = resolve_inputs(patterns);
  BpeTrainer trainer(options);
  RecordReader reader(inputs);
  RawRecord record;
  uint64_t documents = 0, bytes = 0;
  while (reader.next(record)) {
    std::string text = record_text(record, inputs, text_key);
    try {
      trainer.add_text(text);
    } catch (const Error& e) {
      RWKV_FAIL(record_position(record, inputs), ": ", e.what());
    }
    ++documents;
    bytes += text.size();
  }
  RWKV_CHECK(documents > 0, "train-tokenizer: the inputs hold no document\n  ---> HINT: check --input and --text-key");
  log_info("train-tokenizer: ", documents, " documents, ", format_si_bytes(static_cast<double>(bytes)), ", ",
           trainer.num_unique_pieces(), " distinct pieces; merging up to vocab ", options.vocab_size);
  std::string json = trainer.train();
  // Load it back before it takes the final name: what we write must load.
  HfBpeTokenizer check(json, output);
  write_file_atomically(output, json);
  std::printf("wrote %s: vocab_size=%lld merges=%zu documents=%llu seconds=%.2f\n", output.c_str(),
              static_cast<long long>(check.vocab_size()), check.num_merges(), static_cast<unsigned long long>(documents),
              timer.seconds());
  return 0;
}

}  // namespace rwkv::data::cli
