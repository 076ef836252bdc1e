#include "trainer/frozen_parameters.h"

#include <fnmatch.h>

#include "core/error.h"

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
  return frozen;
}

}  // namespace rwkv::trainer
