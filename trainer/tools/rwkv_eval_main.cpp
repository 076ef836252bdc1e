// rwkv-eval: scores RWKV-4 weights on LAMBADA (last-word perplexity and
// accuracy, as the RWKV papers report them; trainer/lambada_eval.h).
//
//   rwkv-eval --weights runs/x/rwkv-final.safetensors --tokenizer 20B_tokenizer.json
//             --lambada lambada_test.jsonl [--limit N] [--json]
#include <chrono>
#include <cstdio>
#include <string>

#include "core/cli_args.h"
#include "core/device.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "trainer/lambada_eval.h"
#include "trainer/weights_file.h"

namespace {

const std::vector<rwkv::cli::Flag> kFlags = {
    {"weights", "FILE", "RWKV-4 weights with the reference names: safetensors (rwkv-train writes rwkv-final.safetensors) or the reference's .pth"},
    {"tokenizer", "SPEC", "bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World); as the model was trained"},
    {"lambada", "FILE", "LAMBADA passages, one {\"text\": ...} per line (lambada_test.jsonl: 5153 passages)"},
    {"limit", "N", "score only the first N passages (default: all)"},
    {"batch", "B", "passages per forward, grouped by length (default 8; the score does not depend on it)"},
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
      std::printf("usage: rwkv-eval --weights FILE --tokenizer SPEC --lambada FILE [--limit N] [--batch B]\n"
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
    const std::unique_ptr<checkpoint::TensorSource> weights = checkpoint::open_tensor_file(args.require("weights"));
    const checkpoint::TensorSource& file = *weights;
    const Rwkv4Shape shape = shape_of(file);
    const auto tokenizer = data::load_tokenizer(args.require("tokenizer"));
    expect_tokenizer_fits(*tokenizer, shape);
    const std::string device_name = args.get("device", "cpu"), precision_name = args.get("precision", "fp32");
    RWKV_CHECK(device_name == "cpu" || device_name == "cuda", "--device expects cpu or cuda, got '", device_name, "'");
    RWKV_CHECK(precision_name == "fp32" || precision_name == "bf16", "--precision expects fp32 or bf16, got '",
               precision_name, "'");
    const Device device = device_name == "cuda" ? Device::cuda(0) : Device::cpu();
    const Precision precision = precision_name == "bf16" ? Precision::BF16 : Precision::FP32;
    RWKV_CHECK(!device.is_cuda() || cuda_available(), "--device cuda, but ", cuda_unavailable_reason(),
               "\n  ---> HINT: run on a GPU node, or use --device cpu");
    RWKV_CHECK(precision == Precision::FP32 || device.is_cuda(),
               "--precision bf16 needs --device cuda (the CPU kernels compute in f32)");
    const std::unique_ptr<Rwkv4Model> model = load_rwkv4(file, device, precision);
    const std::vector<LambadaPassage> passages = read_lambada(args.require("lambada"), *tokenizer, limit);
    std::fprintf(stderr, "rwkv-eval: %s (L%lld C%lld V%lld) on %s in %s, %zu LAMBADA passages\n", file.path().c_str(),
                 static_cast<long long>(shape.n_layer), static_cast<long long>(shape.n_embd),
                 static_cast<long long>(shape.vocab_size), device.str().c_str(), precision_name.c_str(), passages.size());
    // Progress about every 5 seconds: a 169M model reads all 5153 passages in
    // ~40 minutes on two cores at --batch 8 (0.44 s a passage; 0.78 at --batch 1).
    const auto start = std::chrono::steady_clock::now();
    auto last_report = start;
    const LambadaScore score = evaluate_lambada(*model, passages, tokenizer->eod_id(), batch, [&](int64_t done, const LambadaScore& s) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report < std::chrono::seconds(5) && done < static_cast<int64_t>(passages.size())) return;
      last_report = now;
      const double seconds = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "  %lld/%zu passages: ppl %.3f, accuracy %.2f%% (%.1f s, ~%.0f s left)\n",
                   static_cast<long long>(done), passages.size(), s.perplexity(), 100 * s.accuracy(), seconds,
                   seconds / static_cast<double>(done) * static_cast<double>(static_cast<int64_t>(passages.size()) - done));
    });
    if (args.has("json")) {
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
