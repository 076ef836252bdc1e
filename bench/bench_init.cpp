// Start-up cost of one rank's parameter initialisation: init_rwkv4_reference
// on the slice a (pp stage, tp rank) holds of an RWKV-4-Pile shape, as
// rwkv-train runs it before the first step of a fresh run.
//
//   rwkv-bench-init [--model 14B] [--pp P --stage S] [--tp T --tp-rank R] [--dtype f32|f64]
//
// Prints the parameters this rank holds, the random draws its own tensors
// take (a normal per element of every orthogonal matrix before its QR, a
// uniform per embedding element) against the whole model's, the wall time,
// and one JSON line. A rank initialises only what it holds: each random
// tensor has its own stream (trainer/rwkv4_parameters.cpp), so the time
// should follow this rank's draws and QRs, not the model's.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "core/cli_args.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "planner/model_spec.h"
#include "trainer/rwkv4_model.h"
#include "trainer/rwkv4_partition.h"

namespace {

using namespace rwkv;

// Random draws of the tensors listed (each whole, as its init makes it).
double random_draws(const std::vector<Rwkv4TensorSpec>& specs) {
  double n = 0;
  for (const Rwkv4TensorSpec& s : specs) n += static_cast<double>(reference_init_draws(s.name, s.global_shape));
  return n;
}

int run(int argc, char** argv) {
  const cli::Args args("rwkv-bench-init",
                       {{"model", "NAME", "an RWKV-4-Pile shape: 169M, 430M, 1.5B, 3B, 7B, 14B (default 1.5B)"},
                        {"pp", "P", "pipeline stages (default 1)"},
                        {"stage", "S", "the stage this rank holds, 0..P-1 (default 0)"},
                        {"tp", "T", "tensor-parallel ranks (default 1)"},
                        {"tp-rank", "R", "this rank's tensor-parallel rank, 0..T-1 (default 0)"},
                        {"dtype", "f32|f64", "the parameters' dtype (default f32)"}},
                       argc, argv, 1);
  if (args.help_requested()) {
    std::printf("%s", args.usage().c_str());
    return 0;
  }
  const std::string model = args.get("model", "1.5B");
  const int64_t pp = args.get_int("pp", 1), stage = args.get_int("stage", 0);
  const int64_t tp = args.get_int("tp", 1), tp_rank = args.get_int("tp-rank", 0);
  const std::string dtype_name = args.get("dtype", "f32");
  RWKV_CHECK(dtype_name == "f32" || dtype_name == "f64", "rwkv-bench-init: --dtype expects f32 or f64, got '",
             dtype_name, "'");
  const DType dtype = dtype_name == "f32" ? DType::F32 : DType::F64;
  const planner::ModelSpec spec = planner::pile_model(model);
  const Rwkv4Shape shape = spec.shape();
  RWKV_CHECK(pp >= 1 && stage >= 0 && stage < pp, "rwkv-bench-init: --stage expects 0..pp-1 (pp ", pp, "), got ", stage);
  Rwkv4Partition part = Rwkv4Partition::whole(shape);
  std::tie(part.layer_begin, part.layer_end) = stage_layers(shape.n_layer, pp, stage);
  part.tp_size = tp, part.tp_rank = tp_rank, part.padded_vocab = padded_vocab_size(shape.vocab_size, tp, 1);
  part.validate(shape);

  const std::vector<Rwkv4TensorSpec> mine = rwkv4_tensor_specs(shape, part);
  const double my_draws = random_draws(mine);
  const double all_draws = random_draws(rwkv4_tensor_specs(shape, Rwkv4Partition::whole(shape)));
  ParameterStore params = declare_rwkv4_parameters(shape, dtype, Device::cpu(), part);
  double held = 0;
  for (const NamedTensor& e : params.entries()) held += static_cast<double>(e.value.numel());

  Timer t;
  init_rwkv4_reference(params, shape, 1, 1e-4);
  const double seconds = t.seconds();
  std::printf("init of RWKV-4 %s (L%lld C%lld V%lld), blocks [%lld, %lld) of pp %lld, tp rank %lld of %lld, %s, %d threads\n",
              spec.name.c_str(), (long long)shape.n_layer, (long long)shape.n_embd, (long long)shape.vocab_size,
              (long long)part.layer_begin, (long long)part.layer_end, (long long)pp, (long long)tp_rank, (long long)tp,
              dtype_name.c_str(), num_threads());
  std::printf("  parameters held   %.3f G\n", held / 1e9);
  std::printf("  random draws      %.3f G of this rank's tensors, %.3f G in the whole model\n", my_draws / 1e9,
              all_draws / 1e9);
  std::printf("  wall time         %.2f s\n", seconds);
  std::printf("{\"bench\":\"init\",\"model\":\"%s\",\"pp\":%lld,\"stage\":%lld,\"tp\":%lld,\"tp_rank\":%lld,"
              "\"params\":%.0f,\"draws\":%.0f,\"model_draws\":%.0f,\"seconds\":%.3f}\n",
              spec.name.c_str(), (long long)pp, (long long)stage, (long long)tp, (long long)tp_rank, held, my_draws,
              all_draws, seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
