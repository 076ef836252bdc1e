// The model a plan is for: an RWKV-4 shape and its context length, from one
// of the six RWKV-4-Pile names or from a training config (configs/*.yaml),
// and the parameter arithmetic the memory and time models build on.
//
// Parameters per block, C channels, F = dim_ffn (4C in RWKV-4), tp ranks
// (C_l = C/tp, F_l = F/tp local widths; trainer/rwkv4_partition.h):
//   att.key, value, receptance   3 C_l C     (row splits)
//   att.output                   C C_l       (column split)
//   att.time_decay, time_first   2 C_l
//   att.time_mix_k/v/r           3 C         (replicated)
//   ffn.key                      F_l C       (row split)
//   ffn.receptance               C_l C       (row split)
//   ffn.value                    C F_l       (column split)
//   ffn.time_mix_k/r             2 C         (replicated)
//   ln1, ln2                     4 C         (replicated)
// plus ln0 (2C) in block 0, emb [V_p/tp, C] on the first stage, ln_out (2C)
// and head [V_p/tp, C] on the last. At tp = 1 without padding the whole model
// is 2VC + L(13C^2 + 11C) + 4C (DESIGN.md section 4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/rwkv4_model.h"
#include "trainer/rwkv4_partition.h"

namespace rwkv::planner {

struct ModelSpec {
  std::string name;          // "14B", or the config file it came from
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t dim_ffn = 0;       // 4 * n_embd for RWKV-4
  int64_t vocab_size = 0;
  int64_t ctx_len = 0;       // T: tokens per sequence
  int64_t global_batch = 0;  // sequences per optimizer step in the recipe (a config's micro x accum x dp)

  Rwkv4Shape shape() const { return {n_layer, n_embd, vocab_size, dim_ffn}; }
};

// "169M", "430M", "1.5B", "3B", "7B", "14B" (also "1b5", "rwkv4-14b", any case):
// the RWKV-4-Pile shapes (V = 50277, ctx 1024) with the configs' global batch
// of 128 sequences. Throws listing the names for anything else.
ModelSpec pile_model(const std::string& name);
std::vector<std::string> pile_model_names();
// A training config (YAML, checked like rwkv-train checks it).
ModelSpec model_from_config(const std::string& path, const std::vector<std::string>& overrides = {});
// A name if it is one, else a config path.
ModelSpec resolve_model(const std::string& name_or_path);

// Parameters of one rank's part (this rank's slices; padded vocabulary rows
// counted, as the trainer allocates them).
int64_t local_parameters(const ModelSpec& m, const Rwkv4Partition& part);
// Parameters of one block's tp slice (without ln0).
int64_t block_parameters(const ModelSpec& m, int64_t tp);
// The whole model, no padding: the sum of the per-tensor counts above.
int64_t total_parameters(const ModelSpec& m);
// The closed form 2VC + L(13C^2 + 11C) + 4C (valid for F = 4C).
int64_t closed_form_parameters(const ModelSpec& m);
// Model FLOPs per trained token: 6 x the matmul parameters
// (forward 2, backward 4 per weight): 6 (L (5C^2 + 2CF) + VC), the
// definition of rwkv-train's MFU (trainer/train_loop.h).
double model_flops_per_token(const ModelSpec& m);

}  // namespace rwkv::planner
