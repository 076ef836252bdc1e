// rwkv-generate: continue a prompt with a trained RWKV-4 model, one token at a
// time through the recurrent form (state carried, constant memory per token).
//
//   rwkv-generate --weights runs/x/rwkv-final.safetensors --tokenizer bytes
//                 --prompt "Once upon a time" [--tokens 200] [--temperature 1.0] [--top-p 0.85] [--seed 0]
//                 [--device cpu|cuda]
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/cli_args.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/rwkv4_recurrent.h"
#include "trainer/sampling.h"
#include "trainer/weights_file.h"

namespace {

const std::vector<rwkv::cli::Flag> kFlags = {
    {"weights", "FILE", "RWKV-4 weights with the reference names: safetensors (rwkv-train writes rwkv-final.safetensors) or the reference's .pth"},
    {"tokenizer", "SPEC", "bytes | PATH.json (Hugging Face) | PATH.txt (RWKV World); as the model was trained"},
    {"prompt", "TEXT", "the text to continue"},
    {"tokens", "N", "tokens to generate (default 200)"},
    {"temperature", "T", "0 = greedy (default 1.0)"},
    {"top-p", "P", "nucleus sampling, in (0, 1] (default 0.85)"},
    {"seed", "S", "random seed (default 0)"},
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
    const int64_t count = args.get_int("tokens", 200);
    RWKV_CHECK(count >= 0, "--tokens expects a count >= 0, got ", count);
    rwkv::SamplingOptions sampling;
    sampling.temperature = args.get_double("temperature", sampling.temperature);
    sampling.top_p = args.get_double("top-p", sampling.top_p);
    RWKV_CHECK(sampling.temperature >= 0.0, "--temperature expects a value >= 0 (0: greedy), got ", sampling.temperature);
    RWKV_CHECK(sampling.top_p > 0.0 && sampling.top_p <= 1.0, "--top-p expects a value in (0, 1], got ", sampling.top_p);
    const rwkv::Device device = rwkv::cli::device_flag(args);
    const int64_t seed_arg = args.get_int("seed", 0);
    RWKV_CHECK(seed_arg >= 0, "--seed expects a value >= 0, got ", seed_arg);
    const uint64_t seed = static_cast<uint64_t>(seed_arg);
    const std::unique_ptr<rwkv::checkpoint::TensorSource> source = rwkv::checkpoint::open_tensor_file(weights);
    const rwkv::checkpoint::TensorSource& file = *source;
    const rwkv::Rwkv4Shape shape = rwkv::shape_of(file);
    auto tokenizer = rwkv::data::load_tokenizer(tokenizer_spec);
    rwkv::expect_tokenizer_fits(*tokenizer, shape);
    const std::unique_ptr<rwkv::Rwkv4Model> model = rwkv::load_rwkv4(file, device);
    std::vector<int32_t> ids = tokenizer->encode(prompt);
    if (ids.empty()) ids.push_back(tokenizer->eod_id());  // start from a document boundary
    rwkv::Rwkv4State state = rwkv::Rwkv4State::fresh(shape, 1, rwkv::DType::F32, device);
    const int64_t prompt_length = static_cast<int64_t>(ids.size());
    rwkv::Tensor logits = rwkv::Tensor::empty({1, prompt_length, shape.vocab_size}, rwkv::DType::F32, device);
    rwkv::rwkv4_forward_recurrent(model->tensors(), shape, rwkv::Tensor::from_vector<int32_t>(ids, {1, prompt_length}), state, logits);
    std::mt19937_64 rng(seed);
    std::fputs(prompt.c_str(), stdout);
    rwkv::Tensor one = rwkv::Tensor::empty({1, 1}, rwkv::DType::I32);
    // Sampling reads the last row on the host: V floats a token leave the device.
    const rwkv::Tensor last = logits.view({prompt_length, shape.vocab_size}).slice_rows(prompt_length - 1, 1).to(rwkv::Device::cpu());
    std::vector<float> current = last.to_vector<float>();
    rwkv::Tensor step_logits = rwkv::Tensor::empty({1, 1, shape.vocab_size}, rwkv::DType::F32, device);
    for (int64_t n = 0; n < count; ++n) {
      // Only ids the tokenizer can decode are candidates (a padded vocabulary has more rows).
      const int32_t next = rwkv::sample_token(std::span<const float>(current.data(), static_cast<size_t>(tokenizer->vocab_size())), sampling, rng);
      if (next == tokenizer->eod_id()) break;
      std::fputs(tokenizer->decode(std::span<const int32_t>(&next, 1)).c_str(), stdout);
      std::fflush(stdout);
      one.data<int32_t>()[0] = next;
      rwkv::rwkv4_forward_recurrent(model->tensors(), shape, one, state, step_logits);
      current = step_logits.to_vector<float>();
    }
    std::fputs("\n", stdout);
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-generate: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-generate: internal error: %s\n", e.what());
    return 1;
  }
}
