#include "trainer/frozen_parameters.h"

#include <fnmatch.h>

#include "core/error.h"
#include "trainer/rwkv4_partition.h"

namespace rwkv::trainer {

FrozenParameters frozen_parameters(const std::vector<std::string>& patterns, const Rwkv4Shape& shape,
                                   const std::string& config_path) {
  FrozenParameters frozen;
  const std::vector<Rwkv4TensorSpec> specs = rwkv4_tensor_specs(shape);
  for (const std::string& pattern : patterns) {
    bool matched = false;
    for (const Rwkv4TensorSpec& spec : specs) {
      if (fnmatch(pattern.c_str(), spec.name.c_str(), 0) != 0) continue;
      matched = true;
      if (frozen.names.insert(spec.name).second) frozen.parameters += shape_numel(spec.global_shape);
    }
    RWKV_CHECK(matched, config_path, ": train.freeze: '", pattern, "' matches no parameter of this ", shape.n_layer,
               "-block model\n  ---> HINT: patterns are reference names or globs over them, e.g. emb.weight, "
               "\"blocks.0.*\", \"blocks.*.att.time_*\", head.weight (rwkv-ckpt inspect FILE lists every name)");
  }
  RWKV_CHECK(frozen.names.size() < specs.size(), config_path, ": train.freeze matches every one of the model's ",
             specs.size(), " tensors, so nothing would train\n  ---> HINT: leave out the blocks to fine-tune, e.g. "
             "freeze: [emb.weight, \"blocks.[0-5].*\"]");
  return frozen;
}

namespace {
// The matrices of the GEMMs (the embedding is a lookup, not counted).
bool is_matmul_weight(const std::string& name) {
  if (name == "head.weight") return true;
  for (const char* m : {".att.key.weight", ".att.value.weight", ".att.receptance.weight", ".att.output.weight",
                        ".ffn.key.weight", ".ffn.receptance.weight", ".ffn.value.weight"}) {
    const std::string suffix = m;
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
  }
  return false;
}
}  // namespace

double frozen_flops_per_token(const TrainConfig& config) {
  if (config.train.freeze.empty()) return 0.0;
  const ModelConfig& m = config.model;
  const Rwkv4Shape shape{m.n_layer, m.n_embd, m.vocab_size, m.dim_ffn};
  const FrozenParameters frozen = frozen_parameters(config.train.freeze, shape, "");
  const std::vector<Rwkv4TensorSpec> specs = rwkv4_tensor_specs(shape);
  const int64_t first_stage_end =
      stage_layers(m.n_layer, config.parallel.pp, 0, stage_boundaries(config.parallel.stage_layers)).second;
  const int64_t leading = frozen_leading_blocks(
      shape, [&](const std::string& n) { return frozen.contains(n); }, 0, first_stage_end);
  double saved = 0.0;
  for (const Rwkv4TensorSpec& s : specs) {
    if (!is_matmul_weight(s.name) || !frozen.contains(s.name)) continue;
    const double params = static_cast<double>(shape_numel(s.global_shape));
    saved += 2.0 * params;
    for (int64_t l = 0; l < leading; ++l)
      if (s.name.rfind(str_cat("blocks.", l, "."), 0) == 0) saved += 2.0 * params;
  }
  return saved;
}

}  // namespace rwkv::trainer
