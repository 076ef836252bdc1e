// The planner's parameter arithmetic against DESIGN.md's closed form, the
// trainer's parameter_count, the parameters declare_rwkv4_parameters really
// allocates for every partition, and rwkv-train's FLOPs per token.
#include <gtest/gtest.h>

#include "planner/layout.h"
#include "planner/model_spec.h"
#include "trainer/config.h"
#include "trainer/train_loop.h"

namespace rwkv::planner {
namespace {

TEST(PlannerModel, SixPileShapesEqualTheFormulaAndTheTrainer) {
  const std::vector<std::pair<std::string, int64_t>> known = {
      {"169M", 169342464}, {"430M", 430397440}, {"1.5B", 1515106304},
      {"3B", 2984627200},  {"7B", 7392649216},  {"14B", 14148597760}};  // configs/README.md
  ASSERT_EQ(pile_model_names().size(), known.size());
  for (const auto& [name, count] : known) {
    SCOPED_TRACE(name);
    const ModelSpec m = pile_model(name);
    const int64_t C = m.n_embd, V = m.vocab_size, L = m.n_layer;
    EXPECT_EQ(total_parameters(m), 2 * V * C + L * (13 * C * C + 11 * C) + 4 * C);
    EXPECT_EQ(total_parameters(m), closed_form_parameters(m));
    trainer::ModelConfig mc;
    mc.n_layer = L, mc.n_embd = C, mc.vocab_size = V, mc.dim_ffn = m.dim_ffn;
    EXPECT_EQ(total_parameters(m), trainer::parameter_count(mc));
    EXPECT_EQ(total_parameters(m), count);
    EXPECT_DOUBLE_EQ(model_flops_per_token(m), trainer::training_flops_per_token(mc));
  }
  EXPECT_EQ(pile_model("14b").n_layer, 40);
  EXPECT_EQ(pile_model("rwkv4-1b5").n_embd, 2048);
  EXPECT_THROW(pile_model("13B"), Error);
}

TEST(PlannerModel, ConfigFilesGiveTheirShapes) {
  const ModelSpec m = model_from_config(std::string(RWKV_SOURCE_DIR) + "/configs/rwkv4-14b.yaml");
  EXPECT_EQ(m.n_layer, 40);
  EXPECT_EQ(m.n_embd, 5120);
  EXPECT_EQ(m.dim_ffn, 20480);
  EXPECT_EQ(m.vocab_size, 50277);
  EXPECT_EQ(m.ctx_len, 1024);
  EXPECT_EQ(m.global_batch, 128);
  EXPECT_EQ(total_parameters(m), 14148597760);
}

// Every (tp, pp, padding) partition of small shapes: the planner's count of
// a rank's parameters equals what the trainer declares (and allocates) for it.
TEST(PlannerModel, LocalParametersEqualTheDeclaredSlices) {
  for (const auto& [L, C, V] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{4, 24, 257}, {5, 48, 100}, {3, 12, 7}}) {
    const ModelSpec m{"t", L, C, 4 * C, V, 8, 4};
    for (int64_t tp : {1, 2, 3, 4}) {
      for (int64_t pp = 1; pp <= L; ++pp) {
        for (int64_t pad : {1, 64}) {
          Layout l;
          l.tp = tp, l.pp = pp, l.vocab_pad_multiple = pad;
          for (int64_t s = 0; s < pp; ++s) {
            for (int64_t r = 0; r < tp; ++r) {
              Rwkv4Partition part = l.part(m, s);
              part.tp_rank = r;
              const int64_t declared = declare_rwkv4_parameters(m.shape(), DType::F32, Device::cpu(), part).numel();
              EXPECT_EQ(local_parameters(m, part), declared)
                  << "L" << L << " C" << C << " V" << V << " tp " << tp << " pp " << pp << " stage " << s << " pad " << pad;
            }
          }
        }
      }
    }
  }
}

TEST(PlannerModel, LayoutsAreValidatedWithTheFlagInTheMessage) {
  const ModelSpec m = pile_model("14B");
  Layout l;
  l.tp = 3;
  try {
    validate_layout(m, l);
    FAIL() << "tp 3 does not divide 5120";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--tp 3 must divide n_embd=5120"), std::string::npos) << e.what();
  }
  l.tp = 1, l.pp = 41;
  EXPECT_THROW(validate_layout(m, l), Error);
}

}  // namespace
}  // namespace rwkv::planner
