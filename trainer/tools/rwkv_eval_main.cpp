// rwkv-eval: scores RWKV-4 weights on LAMBADA (last-word perplexity and
// accuracy, as the RWKV papers report them; trainer/lambada_eval.h) or on a
// multiple-choice task (acc and acc_norm as lm-evaluation-harness scores
// PIQA, HellaSwag, ARC...; trainer/choice_eval.h), or its perplexity and bits
// per byte on text (trainer/text_eval.h).
//
//   rwkv-eval --weights runs/x/rwkv-final.safetensors --tokenizer 20B_tokenizer.json
//             --lambada lambada_test.jsonl [--limit N] [--json]
//   rwkv-eval --weights ... --tokenizer ... --choices piqa.jsonl [--limit N] [--json]
//   rwkv-eval --weights ... --tokenizer ... --text 'val/*.jsonl.zst' [--ctx-len 1024] [--limit N] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/cli_args.h"
#include "core/device.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "trainer/choice_eval.h"
#include "trainer/lambada_eval.h"
#include "trainer/text_eval.h"
#include "trainer/weights_file.h"

namespace {

const std::vector<rwkv::cli::Flag> kFlags = {
    {"weights", "FILE", "RWKV-4 weights with the reference names: safetensors (rwkv-train writes rwkv-final.safetensors) or the reference's .pth"},
    {"tokenizer", "SPEC", "bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World); as the model was trained"},
    {"lambada", "FILE", "LAMBADA passages, one {\"text\": ...} per line (lambada_test.jsonl: 5153 passages)"},
    {"choices", "FILE", "multiple-choice questions, one {\"context\": ..., \"choices\": [...], \"label\": N} per line"},
    {"text", "FILES", "documents to score (.txt, .jsonl with \"text\", .zst of either; globs, comma-separated)"},
    {"ctx-len", "N", "--text: predictions per window, each from an empty state (default 1024, as the Pile models trained)"},
    {"limit", "N", "score only the first N passages, questions or documents (default: all)"},
    {"batch", "B", "sequences per forward, grouped by length (default 8; the score does not depend on it)"},
    {"device", "cpu|cuda", "where the model runs (default cpu; cuda: the first GPU)"},
    {"precision", "fp32|bf16", "fp32 (default), or bf16 weights and activations on a GPU (train.precision's plan)"},
    {"json", "", "print the result as one JSON object"},
};

}  // namespace

int main(int argc, char** argv) {
  using namespace rwkv;
  try {
    const cli::Args args("rwkv-eval", kFlags, argc, argv, 1);
    if (args.help_requested()) {
      std::printf("usage: rwkv-eval --weights FILE --tokenizer SPEC (--lambada FILE | --choices FILE | --text FILES)\n"
                  "                 [--ctx-len N] [--limit N] [--batch B]\n"
                  "                 [--device cpu|cuda] [--precision fp32|bf16] [--json]\n\n%s\n",
                  args.usage().c_str());
      return 0;
    }
    RWKV_CHECK(args.positional().empty(), "unexpected argument '", args.positional().front(), "'\n  ---> HINT: ",
               args.usage());
    const int64_t limit = args.get_int("limit", 0);
    RWKV_CHECK(limit >= 0, "--limit expects a count >= 0, got ", limit);
    const int64_t batch = args.get_int("batch", 8);
    RWKV_CHECK(batch >= 1, "--batch expects a count >= 1, got ", batch);
    RWKV_CHECK(int{args.has("lambada")} + int{args.has("choices")} + int{args.has("text")} == 1,
               "rwkv-eval scores one task: give --lambada FILE, --choices FILE or --text FILES", "\n  ---> HINT: ", args.usage());
    const int64_t ctx_len = args.get_int("ctx-len", 1024);
    RWKV_CHECK(ctx_len >= 1, "--ctx-len expects a length >= 1, got ", ctx_len);
    RWKV_CHECK(args.has("text") || !args.has("ctx-len"), "--ctx-len applies to --text only");
    const std::unique_ptr<checkpoint::TensorSource> weights = checkpoint::open_tensor_file(args.require("weights"));
    const checkpoint::TensorSource& file = *weights;
    const Rwkv4Shape shape = shape_of(file);
    const auto tokenizer = data::load_tokenizer(args.require("tokenizer"));
    expect_tokenizer_fits(*tokenizer, shape);
    const std::string precision_name = args.get("precision", "fp32");
    RWKV_CHECK(precision_name == "fp32" || precision_name == "bf16", "--precision expects fp32 or bf16, got '",
               precision_name, "'");
    const Device device = cli::device_flag(args);
    const Precision precision = precision_name == "bf16" ? Precision::BF16 : Precision::FP32;
    RWKV_CHECK(precision == Precision::FP32 || device.is_cuda(),
               "--precision bf16 needs --device cuda (the CPU kernels compute in f32)");
    const std::unique_ptr<Rwkv4Model> model = load_rwkv4(file, device, precision);
    const bool json = args.has("json");
    auto report = [&, last = std::chrono::steady_clock::now(), start = std::chrono::steady_clock::now()](
                      int64_t done, int64_t total, const std::string& running) mutable {
      // Progress about every 5 seconds: a 169M model reads all 5153 LAMBADA
      // passages in ~10 minutes on two cores at --batch 8 (0.12 s a passage).
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(5) && done < total) return;
      last = now;
      const double seconds = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "  %lld/%lld: %s (%.1f s, ~%.0f s left)\n", static_cast<long long>(done),
                   static_cast<long long>(total), running.c_str(), seconds,
                   seconds / static_cast<double>(done) * static_cast<double>(total - done));
    };
    auto header = [&](size_t count, const char* what) {
      std::fprintf(stderr, "rwkv-eval: %s (L%lld C%lld V%lld) on %s in %s, %zu %s\n", file.path().c_str(),
                   static_cast<long long>(shape.n_layer), static_cast<long long>(shape.n_embd),
                   static_cast<long long>(shape.vocab_size), device.str().c_str(), precision_name.c_str(), count, what);
    };
    if (args.has("text")) {
      const std::string list = args.require("text");  // comma-separated
      std::vector<std::string> paths;
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at) paths.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
      const TextWindows text = read_text_windows(paths, *tokenizer, ctx_len, limit);
      header(static_cast<size_t>(text.documents), "documents");
      const TextScore score = evaluate_text(*model, text, batch, [&](int64_t done, const TextScore& s) {
        char running[96];
        std::snprintf(running, sizeof running, "loss %.4f, %.4f bits per byte", s.loss(), s.bits_per_byte());
        report(done, static_cast<int64_t>(text.windows.size()), running);
      });
      if (json) {
        std::printf("{\"task\": \"text\", \"documents\": %lld, \"tokens\": %lld, \"bytes\": %lld, \"loss\": %.6f, "
                    "\"perplexity\": %.6f, \"bits_per_byte\": %.6f}\n",
                    static_cast<long long>(score.documents), static_cast<long long>(score.tokens),
                    static_cast<long long>(score.bytes), score.loss(), score.perplexity(), score.bits_per_byte());
      } else {
        std::printf("text: %lld documents, %lld tokens predicted (windows of %lld): loss %.4f, perplexity %.3f, "
                    "%.4f bits per byte\n",
                    static_cast<long long>(score.documents), static_cast<long long>(score.tokens),
                    static_cast<long long>(ctx_len), score.loss(), score.perplexity(), score.bits_per_byte());
      }
      return 0;
    }
    if (args.has("choices")) {
      const std::vector<ChoiceQuestion> questions = read_choice_questions(args.require("choices"), *tokenizer, limit);
      header(questions.size(), "multiple-choice questions");
      const ChoiceScore score = evaluate_choices(*model, questions, tokenizer->eod_id(), batch, [&](int64_t done, const ChoiceScore& s) {
        char running[96];
        std::snprintf(running, sizeof running, "acc %.2f%%, acc_norm %.2f%%", 100 * s.accuracy(), 100 * s.accuracy_norm());
        report(done, static_cast<int64_t>(questions.size()), running);
      });
      if (json) {
        std::printf("{\"task\": \"choices\", \"questions\": %lld, \"accuracy\": %.6f, \"accuracy_norm\": %.6f, "
                    "\"correct\": %lld, \"correct_norm\": %lld}\n",
                    static_cast<long long>(score.questions), score.accuracy(), score.accuracy_norm(),
                    static_cast<long long>(score.correct), static_cast<long long>(score.correct_norm));
      } else {
        std::printf("choices: %lld questions: acc %.2f%% (%lld correct), acc_norm %.2f%% (%lld correct)\n",
                    static_cast<long long>(score.questions), 100 * score.accuracy(), static_cast<long long>(score.correct),
                    100 * score.accuracy_norm(), static_cast<long long>(score.correct_norm));
      }
      return 0;
    }
    const std::vector<LambadaPassage> passages = read_lambada(args.require("lambada"), *tokenizer, limit);
    header(passages.size(), "LAMBADA passages");
    const LambadaScore score = evaluate_lambada(*model, passages, tokenizer->eod_id(), batch, [&](int64_t done, const LambadaScore& s) {
      char running[96];
      std::snprintf(running, sizeof running, "ppl %.3f, accuracy %.2f%%", s.perplexity(), 100 * s.accuracy());
      report(done, static_cast<int64_t>(passages.size()), running);
    });
    if (json) {
      std::printf("{\"task\": \"lambada\", \"passages\": %lld, \"target_tokens\": %lld, \"perplexity\": %.6f, "
                  "\"accuracy\": %.6f, \"correct\": %lld}\n",
                  static_cast<long long>(score.passages), static_cast<long long>(score.target_tokens), score.perplexity(),
                  score.accuracy(), static_cast<long long>(score.correct));
    } else {
      std::printf("lambada: %lld passages (%lld target tokens): perplexity %.3f, accuracy %.2f%% (%lld correct)\n",
                  static_cast<long long>(score.passages), static_cast<long long>(score.target_tokens), score.perplexity(),
                  100 * score.accuracy(), static_cast<long long>(score.correct));
    }
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-eval: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-eval: internal error: %s\n", e.what());
    return 1;
  }
}
