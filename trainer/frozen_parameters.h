// train.freeze: parameters that fine-tuning leaves as they are. Each pattern
// is a reference name or a shell glob over them (fnmatch: `blocks.0.*`,
// `blocks.*.att.time_*`, `emb.weight`). A frozen tensor keeps its values
// bit for bit: its gradient is zeroed after the reduction (so it adds
// nothing to the clipped norm and its AdamW moments stay 0) and its lr
// multiplier is 0 (so weight decay leaves it too). Backward skips the
// weight-gradient GEMMs of frozen matrices (Rwkv4Model::set_frozen); the
// input gradients still flow through them to the blocks below.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::trainer {

struct FrozenParameters {
  std::set<std::string> names;  // the global names the patterns match
  int64_t parameters = 0;       // their elements, over the whole model
  bool contains(const std::string& name) const { return names.count(name) > 0; }
};

// The whole model's tensors that match any pattern. A pattern that matches
// none is an error naming it (config_path: the file, for the message).
FrozenParameters frozen_parameters(const std::vector<std::string>& patterns, const Rwkv4Shape& shape,
                                   const std::string& config_path);

// The model FLOPs per token a training step does not do because of
// train.freeze (the MFU counts only work done): 2 per parameter of each
// frozen matrix (no weight gradient; the head and each block's seven), and 2
// more for those in the wholly frozen blocks at the bottom of the first
// pipeline stage (no input gradient either). 0 without train.freeze.
double frozen_flops_per_token(const TrainConfig& config);

}  // namespace rwkv::trainer
