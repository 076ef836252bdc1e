// parameter_count against the RWKV-4 state dict, tensor by tensor, and against
// DESIGN.md's closed form 2VC + L(13C^2 + 11C) + 4C.
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace rwkv::trainer {
namespace {

// The state dict of DESIGN.md section 4, summed shape by shape.
int64_t count_state_dict(int64_t L, int64_t C, int64_t V, int64_t F) {
  int64_t total = V * C;                     // emb.weight [V, C]
  total += 2 * C;                            // blocks.0.ln0.{weight,bias}
  for (int64_t l = 0; l < L; ++l) {
    total += 4 * C;                          // ln1, ln2 {weight, bias}
    total += 2 * C;                          // att.time_decay, att.time_first [C]
    total += 3 * C;                          // att.time_mix_{k,v,r} [1,1,C]
    total += 4 * C * C;                      // att.{key,value,receptance,output}.weight [C,C]
    total += 2 * C;                          // ffn.time_mix_{k,r} [1,1,C]
    total += F * C + C * C + C * F;          // ffn.key [F,C], ffn.receptance [C,C], ffn.value [C,F]
  }
  total += 2 * C;                            // ln_out
  total += V * C;                            // head.weight [V, C]
  return total;
}

int64_t design_formula(int64_t L, int64_t C, int64_t V) { return 2 * V * C + L * (13 * C * C + 11 * C) + 4 * C; }

TEST(ConfigParams, PileShapesMatchTheDesignFormula) {
  for (const char* file : {"rwkv4-169m.yaml", "rwkv4-430m.yaml", "rwkv4-1b5.yaml", "rwkv4-3b.yaml", "rwkv4-7b.yaml",
                           "rwkv4-14b.yaml"}) {
    SCOPED_TRACE(file);
    const ModelConfig m = load_config(test::source_dir() + "/configs/" + file).model;
    EXPECT_EQ(parameter_count(m), design_formula(m.n_layer, m.n_embd, m.vocab_size));
    EXPECT_EQ(parameter_count(m), count_state_dict(m.n_layer, m.n_embd, m.vocab_size, 4 * m.n_embd));
  }
}

TEST(ConfigParams, KnownTotals) {
  ModelConfig m;
  m.vocab_size = 50277;
  m.n_layer = 12, m.n_embd = 768;
  EXPECT_EQ(parameter_count(m), 169342464);  // RWKV-4-Pile-169M
  m.n_layer = 40, m.n_embd = 5120;
  EXPECT_EQ(parameter_count(m), 14148597760);  // "about 14.15e9" (DESIGN.md)
  EXPECT_NEAR(static_cast<double>(parameter_count(m)), 14.15e9, 0.005e9);
}

TEST(ConfigParams, GeneralFfnWidth) {
  ModelConfig m;
  m.n_layer = 3, m.n_embd = 48, m.vocab_size = 300, m.dim_ffn = 100;
  EXPECT_EQ(parameter_count(m), count_state_dict(3, 48, 300, 100));
  m.dim_ffn = 0;  // unresolved default counts as 4C
  EXPECT_EQ(parameter_count(m), design_formula(3, 48, 300));
}

}  // namespace
}  // namespace rwkv::trainer
