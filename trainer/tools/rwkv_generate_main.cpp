// rwkv-generate: continue a prompt with a trained RWKV-4 model, one token at a
// time through the recurrent form (state carried, constant memory per token).
//
//   rwkv-generate --weights runs/x/rwkv-final.safetensors --tokenizer bytes
//                 --prompt "Once upon a time" [--tokens 200] [--temperature 1.0] [--top-p 0.85] [--seed 0]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "core/error.h"
#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/rwkv4_recurrent.h"
#include "trainer/sampling.h"
#include "trainer/weights_file.h"

namespace {

const char* kUsage =
    "usage: rwkv-generate --weights FILE.safetensors --tokenizer SPEC --prompt TEXT [options]\n"
    "\n"
    "  --weights FILE      RWKV-4 weights with the reference names (rwkv-train writes rwkv-final.safetensors)\n"
    "  --tokenizer SPEC    bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World); as the model was trained\n"
    "  --prompt TEXT       the text to continue\n"
    "  --tokens N          tokens to generate (default 200)\n"
    "  --temperature T     0 = greedy (default 1.0)\n"
    "  --top-p P           nucleus sampling (default 0.85)\n"
    "  --seed S            random seed (default 0)\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "rwkv-generate: error: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

double parse_number(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0') usage_error(flag + " expects a number, got '" + v + "'");
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  std::string weights, tokenizer_spec, prompt;
  int64_t count = 200;
  rwkv::SamplingOptions sampling;
  uint64_t seed = 0;
  bool have_prompt = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--weights") {
      weights = value();
    } else if (arg == "--tokenizer") {
      tokenizer_spec = value();
    } else if (arg == "--prompt") {
      prompt = value();
      have_prompt = true;
    } else if (arg == "--tokens") {
      count = static_cast<int64_t>(parse_number(arg, value()));
    } else if (arg == "--temperature") {
      sampling.temperature = parse_number(arg, value());
    } else if (arg == "--top-p") {
      sampling.top_p = parse_number(arg, value());
    } else if (arg == "--seed") {
      seed = static_cast<uint64_t>(parse_number(arg, value()));
    } else {
      usage_error("unknown argument '" + arg + "'");
    }
  }
  if (weights.empty() || tokenizer_spec.empty() || !have_prompt) usage_error("--weights, --tokenizer and --prompt are required");
  try {
    rwkv::checkpoint::SafetensorsFile file(weights);
    const rwkv::Rwkv4Shape shape = rwkv::shape_of(file);
    auto tokenizer = rwkv::data::load_tokenizer(tokenizer_spec);
    RWKV_CHECK(tokenizer->vocab_size() <= shape.vocab_size, "tokenizer ", tokenizer->name(), " has ", tokenizer->vocab_size(),
               " tokens but the model only ", shape.vocab_size, "\n  ---> HINT: use the tokenizer the model was trained with");
    rwkv::Rwkv4Model model(shape, rwkv::DType::F32);
    rwkv::read_weights(file, model.params());
    std::vector<int32_t> ids = tokenizer->encode(prompt);
    if (ids.empty()) ids.push_back(tokenizer->eod_id());  // start from a document boundary
    rwkv::Rwkv4State state = rwkv::Rwkv4State::fresh(shape, 1, rwkv::DType::F32);
    rwkv::Tensor logits = rwkv::Tensor::empty({1, static_cast<int64_t>(ids.size()), shape.vocab_size}, rwkv::DType::F32);
    rwkv::rwkv4_forward_recurrent(model.tensors(), shape, rwkv::Tensor::from_vector<int32_t>(ids, {1, static_cast<int64_t>(ids.size())}), state, logits);
    std::mt19937_64 rng(seed);
    std::fputs(prompt.c_str(), stdout);
    rwkv::Tensor one = rwkv::Tensor::empty({1, 1}, rwkv::DType::I32);
    const float* last = logits.data<float>() + (static_cast<int64_t>(ids.size()) - 1) * shape.vocab_size;
    std::vector<float> current(last, last + shape.vocab_size);
    rwkv::Tensor step_logits = rwkv::Tensor::empty({1, 1, shape.vocab_size}, rwkv::DType::F32);
    for (int64_t n = 0; n < count; ++n) {
      // Only ids the tokenizer can decode are candidates (a padded vocabulary has more rows).
      const int32_t next = rwkv::sample_token(std::span<const float>(current.data(), static_cast<size_t>(tokenizer->vocab_size())), sampling, rng);
      if (next == tokenizer->eod_id()) break;
      std::fputs(tokenizer->decode(std::span<const int32_t>(&next, 1)).c_str(), stdout);
      std::fflush(stdout);
      one.data<int32_t>()[0] = next;
      rwkv::rwkv4_forward_recurrent(model.tensors(), shape, one, state, step_logits);
      std::copy(step_logits.data<float>(), step_logits.data<float>() + shape.vocab_size, current.begin());
    }
    std::fputs("\n", stdout);
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-generate: error: %s\n", e.what());
    return 1;
  }
}
