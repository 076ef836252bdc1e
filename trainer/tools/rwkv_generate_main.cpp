// rwkv-generate: continue a prompt with a trained RWKV-4 model, one token at a
// time through the recurrent form (state carried, constant memory per token).
//
//   rwkv-generate --weights runs/x/rwkv-final.safetensors --tokenizer bytes
//                 --prompt "Once upon a time" [--tokens 200] [--temperature 1.0] [--top-p 0.85] [--top-k 0]
//                 [--presence-penalty 0] [--frequency-penalty 0] [--penalty-decay 0.996]
//                 [--stop TEXT] [--samples 1] [--seed 0] [--device cpu|cuda]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/cli_args.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "trainer/generation.h"
#include "trainer/rwkv4_model.h"
#include "trainer/weights_file.h"

namespace {

const std::vector<rwkv::cli::Flag> kFlags = {
    {"weights", "FILE", "RWKV-4 weights with the reference names: safetensors (rwkv-train writes rwkv-final.safetensors) or the reference's .pth"},
    {"tokenizer", "SPEC", "bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World); as the model was trained"},
    {"prompt", "TEXT", "the text to continue"},
    {"tokens", "N", "tokens to generate (default 200)"},
    {"temperature", "T", "0 = greedy (default 1.0)"},
    {"top-p", "P", "nucleus sampling, in (0, 1] (default 0.85)"},
    {"top-k", "K", "sample among at most the K most likely tokens; 0 = no limit (default 0)"},
    {"presence-penalty", "A", "subtract A from the logit of every token already generated (ChatRWKV's alpha_presence; default 0)"},
    {"frequency-penalty", "B", "subtract B x its (decayed) count too (ChatRWKV's alpha_frequency; default 0)"},
    {"penalty-decay", "D", "counts are multiplied by D after each token, in [0, 1] (default 0.996)"},
    {"stop", "TEXT", "end a sample where its text first holds TEXT (left out), e.g. $'\\n\\n'"},
    {"samples", "N", "continuations of the prompt, run together as one batch (default 1)"},
    {"seed", "S", "random seed; sample i uses S + i (default 0)"},
    {"device", "cpu|cuda", "where the model runs (default cpu; cuda: GPU 0, f32 weights)"},
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const rwkv::cli::Args args("rwkv-generate", kFlags, argc, argv, 1);
    if (args.help_requested()) {
      std::printf("usage: rwkv-generate --weights FILE --tokenizer SPEC --prompt TEXT [options]\n\n%s\n", args.usage().c_str());
      return 0;
    }
    RWKV_CHECK(args.positional().empty(), "unexpected argument '", args.positional().front(), "'\n  ---> HINT: ", args.usage());
    const std::string weights = args.require("weights"), tokenizer_spec = args.require("tokenizer");
    const std::string prompt = args.require("prompt");
    rwkv::GenerationOptions options;
    options.max_tokens = args.get_int("tokens", 200);
    RWKV_CHECK(options.max_tokens >= 0, "--tokens expects a count >= 0, got ", options.max_tokens);
    options.samples = args.get_int("samples", 1);
    RWKV_CHECK(options.samples >= 1 && options.samples <= 4096, "--samples expects a count in [1, 4096], got ",
               options.samples);
    rwkv::SamplingOptions& sampling = options.sampling;
    sampling.temperature = args.get_double("temperature", sampling.temperature);
    sampling.top_p = args.get_double("top-p", sampling.top_p);
    sampling.top_k = args.get_int("top-k", 0);
    RWKV_CHECK(sampling.temperature >= 0.0, "--temperature expects a value >= 0 (0: greedy), got ", sampling.temperature);
    RWKV_CHECK(sampling.top_p > 0.0 && sampling.top_p <= 1.0, "--top-p expects a value in (0, 1], got ", sampling.top_p);
    RWKV_CHECK(sampling.top_k >= 0, "--top-k expects a count >= 0 (0: no limit), got ", sampling.top_k);
    rwkv::PenaltyOptions& penalty = options.penalty;
    penalty.presence = args.get_double("presence-penalty", 0.0);
    penalty.frequency = args.get_double("frequency-penalty", 0.0);
    penalty.decay = args.get_double("penalty-decay", penalty.decay);
    RWKV_CHECK(std::isfinite(penalty.presence) && std::isfinite(penalty.frequency),
               "--presence-penalty and --frequency-penalty expect finite numbers (ChatRWKV uses 0.25), got ",
               penalty.presence, " and ", penalty.frequency);
    RWKV_CHECK(penalty.decay >= 0.0 && penalty.decay <= 1.0, "--penalty-decay expects a value in [0, 1], got ",
               penalty.decay);
    if (args.has("stop")) {
      options.stop = args.get("stop");
      RWKV_CHECK(!options.stop.empty(), "--stop expects a non-empty text\n  ---> HINT: leave --stop out to run to --tokens");
    }
    const rwkv::Device device = rwkv::cli::device_flag(args);
    const int64_t seed_arg = args.get_int("seed", 0);
    RWKV_CHECK(seed_arg >= 0, "--seed expects a value >= 0, got ", seed_arg);
    options.seed = static_cast<uint64_t>(seed_arg);
    const std::unique_ptr<rwkv::checkpoint::TensorSource> source = rwkv::checkpoint::open_tensor_file(weights);
    const rwkv::Rwkv4Shape shape = rwkv::shape_of(*source);
    auto tokenizer = rwkv::data::load_tokenizer(tokenizer_spec);
    rwkv::expect_tokenizer_fits(*tokenizer, shape);
    const std::unique_ptr<rwkv::Rwkv4Model> model = rwkv::load_rwkv4(*source, device);
    if (options.samples == 1) {
      // One sample streams: the prompt, then each piece of text as it is final.
      std::fputs(prompt.c_str(), stdout);
      std::fflush(stdout);
      rwkv::generate(*model, *tokenizer, prompt, options, [](int64_t, const std::string& text) {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
      });
      std::fputs("\n", stdout);
    } else {
      const std::vector<std::string> texts = rwkv::generate(*model, *tokenizer, prompt, options);
      for (size_t i = 0; i < texts.size(); ++i) {
        std::printf("=== sample %zu (seed %llu)\n%s%s\n", i, static_cast<unsigned long long>(options.seed + i),
                    prompt.c_str(), texts[i].c_str());
      }
    }
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-generate: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-generate: internal error: %s\n", e.what());
    return 1;
  }
}
