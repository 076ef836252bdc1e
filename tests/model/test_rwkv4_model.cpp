// The whole RWKV-4 model: gradients of every parameter against central finite
// differences in double precision, f32 against f64, the reference parameter
// names/shapes/count, and the reference initialisation.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "test_util.h"
#include "trainer/rwkv4_model.h"
#include "trainer/rwkv4_recurrent.h"

namespace rwkv {
namespace {

Rwkv4Shape tiny_shape() { return Rwkv4Shape{2, 6, 11, 24}; }

// Random parameters of a moderate size: the reference init zeroes several
// matrices, which would leave their neighbours' gradients trivially zero.
void randomise(ParameterStore& params, uint64_t seed) {
  for (NamedTensor& e : params.entries()) {
    double lo = -0.5, hi = 0.5;
    if (e.name.find("time_mix") != std::string::npos) lo = 0.1, hi = 0.9;
    if (e.name.find("ln") != std::string::npos && e.name.find("weight") != std::string::npos) lo = 0.7, hi = 1.3;
    e.value.copy_from(test::random_tensor(e.value.shape(), e.value.dtype(), seed++, lo, hi));
  }
}

Tensor token_batch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(static_cast<int32_t>((i * 7 + seed * 3 + (i * i) % 5) % V));
  return Tensor::from_vector<int32_t>(ids, {B, T});
}

TEST(Rwkv4Model, ParameterNamesShapesAndCountFollowTheReference) {
  Rwkv4Shape s{12, 768, 50277, 3072};
  ParameterStore p = declare_rwkv4_parameters(Rwkv4Shape{3, 8, 10, 32}, DType::F32);
  EXPECT_EQ(p.entries().front().name, "emb.weight");
  EXPECT_EQ(p.entries().back().name, "head.weight");
  EXPECT_EQ(p.at("blocks.0.ln0.weight").shape(), (Shape{8}));
  EXPECT_FALSE(p.contains("blocks.1.ln0.weight"));
  EXPECT_EQ(p.at("blocks.2.att.time_mix_r").shape(), (Shape{1, 1, 8}));
  EXPECT_EQ(p.at("blocks.1.ffn.key.weight").shape(), (Shape{32, 8}));
  EXPECT_EQ(p.at("blocks.1.ffn.value.weight").shape(), (Shape{8, 32}));
  // DESIGN.md: params = 2VC + L(13C^2 + 11C) + 4C for dim_ffn = 4C (ln0 + ln_out = 4C).
  const int64_t C = s.n_embd, V = s.vocab_size, L = s.n_layer;
  const int64_t expected = 2 * V * C + L * (13 * C * C + 11 * C) + 4 * C;
  const int64_t count = declare_rwkv4_parameters(Rwkv4Shape{2, 16, 20, 64}, DType::F32).numel();
  EXPECT_EQ(count, 2 * 20 * 16 + 2 * (13 * 16 * 16 + 11 * 16) + 4 * 16);
  EXPECT_EQ(expected, 169342464);  // the "169M" model
  // Optimizer flags: 2-D weights decay, time_decay x2, time_first x3.
  for (const NamedTensor& e : p.entries()) {
    EXPECT_EQ(e.decay, e.value.ndim() == 2) << e.name;
    if (e.name.find("time_decay") != std::string::npos) {
      EXPECT_EQ(e.lr_multiplier, 2.0f);
    }
    if (e.name.find("time_first") != std::string::npos) {
      EXPECT_EQ(e.lr_multiplier, 3.0f);
    }
  }
}

TEST(Rwkv4Model, ReferenceInitialisation) {
  Rwkv4Shape s{4, 8, 30, 32};
  Rwkv4Model m(s, DType::F64);
  init_rwkv4_reference(m.params(), s, 1, 1e-4);
  const ParameterStore& p = m.params();
  auto at = [&](const std::string& n, int64_t i) { return p.at(n).to_vector<double>()[static_cast<size_t>(i)]; };
  // time_decay runs from -5 at channel 0 to +3 at channel C-1 in every layer,
  // with the curve's exponent 0.7 + 1.3 l/(L-1) between.
  for (int64_t layer : {0, 3}) {
    const std::string name = str_cat("blocks.", layer, ".att.time_decay");
    EXPECT_NEAR(at(name, 0), -5.0, 1e-12);
    EXPECT_NEAR(at(name, 7), 3.0, 1e-12);
    EXPECT_NEAR(at(name, 3), -5 + 8 * std::pow(3.0 / 7.0, layer == 0 ? 0.7 : 2.0), 1e-12);
  }
  // Layer 1 of 4: ratio_0_to_1 = 1/3, ratio_1_to_almost0 = 3/4.
  EXPECT_NEAR(at("blocks.1.att.time_decay", 5), -5 + 8 * std::pow(5.0 / 7.0, 0.7 + 1.3 / 3.0), 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_first", 0), std::log(0.3), 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_first", 1), std::log(0.3) + 0.5, 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_first", 2), std::log(0.3) - 0.5, 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_mix_k", 4), std::pow(0.5, 0.75), 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_mix_v", 4), std::pow(0.5, 0.75) + 0.3 / 3.0, 1e-12);
  EXPECT_NEAR(at("blocks.1.att.time_mix_r", 4), std::pow(0.5, 0.375), 1e-12);
  EXPECT_NEAR(at("blocks.3.ffn.time_mix_r", 4), std::pow(0.5, 0.25), 1e-12);
  for (const char* zero : {"blocks.2.att.key.weight", "blocks.2.att.receptance.weight", "blocks.2.att.output.weight",
                           "blocks.2.ffn.value.weight", "blocks.2.ffn.receptance.weight", "ln_out.bias"}) {
    for (double x : p.at(zero).to_vector<double>()) ASSERT_EQ(x, 0.0) << zero;
  }
  for (double x : p.at("emb.weight").to_vector<double>()) ASSERT_LE(std::abs(x), 1e-4);
  EXPECT_EQ(at("blocks.0.ln0.weight", 3), 1.0);
  // Orthogonal: ffn.key [4C, C] has orthogonal columns of norm gain = sqrt(4) = 2;
  // head [V, C] has orthogonal columns of norm 0.5 sqrt(V / C).
  auto check_columns = [&](const std::string& name, double gain) {
    Tensor t = p.at(name);
    const int64_t R = t.dim(0), Cc = t.dim(1);
    auto v = t.to_vector<double>();
    for (int64_t i = 0; i < Cc; ++i)
      for (int64_t j = 0; j < Cc; ++j) {
        double dot = 0;
        for (int64_t r = 0; r < R; ++r) dot += v[static_cast<size_t>(r * Cc + i)] * v[static_cast<size_t>(r * Cc + j)];
        EXPECT_NEAR(dot, i == j ? gain * gain : 0.0, 1e-10) << name << " columns " << i << ", " << j;
      }
  };
  check_columns("blocks.0.ffn.key.weight", 2.0);
  check_columns("head.weight", 0.5 * std::sqrt(30.0 / 8.0));
  check_columns("blocks.1.att.value.weight", 1.0);
}

// The central test: every parameter's gradient equals the finite difference
// of the mean loss, in double precision, through the whole model.
TEST(Rwkv4Model, EveryParameterGradientMatchesFiniteDifferences) {
  const Rwkv4Shape s = tiny_shape();
  Rwkv4Model m(s, DType::F64);
  randomise(m.params(), 100);
  const int64_t B = 2, T = 5;
  Tensor tokens = token_batch(B, T, s.vocab_size, 1), targets = token_batch(B, T, s.vocab_size, 2);
  m.grads().zero_all();
  const double loss = m.forward_backward(tokens, targets, 1.0f / static_cast<float>(B * T), 0.0f);
  EXPECT_TRUE(std::isfinite(loss));
  ParameterStore& params = m.params();
  for (size_t i = 0; i < params.entries().size(); ++i) {
    NamedTensor& e = params.entries()[i];
    const Tensor& grad = m.grads().entries()[i].value;
    test::expect_gradient(e.value, grad, [&] { return m.forward_loss(tokens, targets); }, e.name, 1e-5, 1e-8);
  }
}

// With dropout (the embedding and both residual sums of every block) the
// gradients are those of the dropped-out loss: the masks are a function of
// the samples, so forward_loss redraws the same ones for the finite differences.
TEST(Rwkv4Model, GradientsWithDropoutMatchFiniteDifferencesAndRecompute) {
  const Rwkv4Shape s = tiny_shape();
  Rwkv4Model m(s, DType::F64), again(s, DType::F64, /*recompute=*/true);
  randomise(m.params(), 100);
  for (size_t i = 0; i < m.params().entries().size(); ++i)
    again.params().entries()[i].value.copy_from(m.params().entries()[i].value);
  const int64_t B = 2, T = 5;
  Tensor tokens = token_batch(B, T, s.vocab_size, 1), targets = token_batch(B, T, s.vocab_size, 2);
  const double plain = m.forward_loss(tokens, targets);
  const Rwkv4Model::DropoutPlan plan{0.3f, 5, 11, 0, 3};
  m.set_dropout(plan);
  again.set_dropout(plan);
  m.grads().zero_all();
  const double loss = m.forward_backward(tokens, targets, 1.0f / static_cast<float>(B * T), 0.0f);
  EXPECT_NE(loss, plain);                               // the masks change the loss...
  EXPECT_EQ(m.forward_loss(tokens, targets), loss);     // ...the same way every time
  again.grads().zero_all();
  EXPECT_EQ(again.forward_backward(tokens, targets, 1.0f / static_cast<float>(B * T), 0.0f), loss);
  ParameterStore& params = m.params();
  for (size_t i = 0; i < params.entries().size(); ++i) {
    NamedTensor& e = params.entries()[i];
    const Tensor& grad = m.grads().entries()[i].value;
    EXPECT_EQ(again.grads().entries()[i].value.to_vector<double>(), grad.to_vector<double>()) << e.name << " (recompute)";
    test::expect_gradient(e.value, grad, [&] { return m.forward_loss(tokens, targets); }, e.name, 1e-5, 1e-8);
  }
  m.set_dropout(std::nullopt);
  EXPECT_EQ(m.forward_loss(tokens, targets), plain);  // off again: evaluation sees every unit
}

// Frozen matrices: backward skips their weight-gradient GEMMs (those
// gradients stay 0) and every other gradient is the same, bit for bit. With
// the embedding and block 0 wholly frozen, backward stops above block 0.
TEST(Rwkv4Model, FrozenMatricesSkipTheirWeightGradientsAndChangeNoOther) {
  const Rwkv4Shape s = tiny_shape();
  auto is_gemm = [](const std::string& name) {
    return name == "emb.weight" || name == "head.weight" ||
           (name.find(".weight") != std::string::npos && name.find(".ln") == std::string::npos);
  };
  for (const std::string lower : {"blocks.1.", "blocks.0."}) {
    SCOPED_TRACE(lower);
    const bool stops_early = lower == "blocks.0.";  // with emb.weight: nothing below needs a gradient
    Rwkv4Model all(s, DType::F64), some(s, DType::F64);
    randomise(all.params(), 400);
    for (size_t i = 0; i < all.params().entries().size(); ++i)
      some.params().entries()[i].value.copy_from(all.params().entries()[i].value);
    std::vector<bool> frozen(some.params().entries().size(), false);
    for (size_t i = 0; i < frozen.size(); ++i) {
      const std::string& name = some.params().entries()[i].name;
      frozen[i] = name == "emb.weight" || name == "head.weight" || name.rfind(lower, 0) == 0;
    }
    some.set_frozen(frozen);
    Tensor tokens = token_batch(2, 5, s.vocab_size, 7), targets = token_batch(2, 5, s.vocab_size, 8);
    all.grads().zero_all();
    some.grads().zero_all();
    EXPECT_EQ(all.forward_backward(tokens, targets, 0.1f, 1.0f), some.forward_backward(tokens, targets, 0.1f, 1.0f));
    int skipped = 0;
    for (size_t i = 0; i < frozen.size(); ++i) {
      const std::string& name = some.grads().entries()[i].name;
      const std::vector<double> got = some.grads().entries()[i].value.to_vector<double>();
      if (frozen[i] && (is_gemm(name) || stops_early)) {
        EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](double x) { return x == 0.0; })) << name << " was computed";
        ++skipped;
      } else {
        EXPECT_EQ(got, all.grads().entries()[i].value.to_vector<double>()) << name;
      }
    }
    EXPECT_EQ(skipped, stops_early ? 2 + 20 : 2 + 7);  // emb, head, and block 0 whole or a block's seven matrices
  }
}

TEST(Rwkv4Model, GradientsAccumulateAndL2WrapOnlyTouchesTheHeadPath) {
  const Rwkv4Shape s = tiny_shape();
  Rwkv4Model m(s, DType::F64);
  randomise(m.params(), 200);
  Tensor tokens = token_batch(1, 4, s.vocab_size, 3), targets = token_batch(1, 4, s.vocab_size, 4);
  m.grads().zero_all();
  m.forward_backward(tokens, targets, 0.25f, 0.0f);
  std::vector<std::vector<double>> once;
  for (const NamedTensor& e : m.grads().entries()) once.push_back(e.value.to_vector<double>());
  m.forward_backward(tokens, targets, 0.25f, 0.0f);
  for (size_t i = 0; i < once.size(); ++i) {
    auto twice = m.grads().entries()[i].value.to_vector<double>();
    for (size_t j = 0; j < twice.size(); ++j) ASSERT_NEAR(twice[j], 2 * once[i][j], 1e-12) << m.grads().entries()[i].name;
  }
  // L2Wrap changes the gradients (it pushes the top logit down) but not the loss.
  m.grads().zero_all();
  const double plain = m.forward_backward(tokens, targets, 0.25f, 0.0f);
  auto head_plain = m.grads().at("head.weight").to_vector<double>();
  m.grads().zero_all();
  const double wrapped = m.forward_backward(tokens, targets, 0.25f, 1.0f);
  auto head_wrapped = m.grads().at("head.weight").to_vector<double>();
  EXPECT_EQ(plain, wrapped);
  double diff = 0;
  for (size_t j = 0; j < head_plain.size(); ++j) diff += std::abs(head_plain[j] - head_wrapped[j]);
  EXPECT_GT(diff, 0.0);
}

TEST(Rwkv4Model, FloatMatchesDouble) {
  const Rwkv4Shape s{2, 16, 40, 64};
  Rwkv4Model m64(s, DType::F64), m32(s, DType::F32);
  randomise(m64.params(), 300);
  for (size_t i = 0; i < m64.params().entries().size(); ++i)
    m32.params().entries()[i].value.copy_from(m64.params().entries()[i].value.to_dtype(DType::F32));
  Tensor tokens = token_batch(2, 16, s.vocab_size, 5), targets = token_batch(2, 16, s.vocab_size, 6);
  m64.grads().zero_all();
  m32.grads().zero_all();
  const double l64 = m64.forward_backward(tokens, targets, 1.0f / 32, 1.0f);
  const double l32 = m32.forward_backward(tokens, targets, 1.0f / 32, 1.0f);
  EXPECT_NEAR(l32, l64, 1e-5 * std::abs(l64));
  for (size_t i = 0; i < m64.grads().entries().size(); ++i)
    test::expect_close(m32.grads().entries()[i].value, m64.grads().entries()[i].value, 1e-3, 1e-5,
                       m64.grads().entries()[i].name);
}

// Recomputing blocks in backward changes memory, not results: bit-identical.
TEST(Rwkv4Model, RecomputeGivesBitIdenticalGradients) {
  const Rwkv4Shape s{3, 16, 20, 64};
  Rwkv4Model plain(s, DType::F32), recompute(s, DType::F32, /*recompute=*/true);
  randomise(plain.params(), 500);
  for (size_t i = 0; i < plain.params().entries().size(); ++i)
    recompute.params().entries()[i].value.copy_from(plain.params().entries()[i].value);
  Tensor tokens = token_batch(2, 9, s.vocab_size, 7), targets = token_batch(2, 9, s.vocab_size, 8);
  plain.grads().zero_all();
  recompute.grads().zero_all();
  EXPECT_EQ(plain.forward_backward(tokens, targets, 1.0f / 18, 1.0f), recompute.forward_backward(tokens, targets, 1.0f / 18, 1.0f));
  for (size_t i = 0; i < plain.grads().entries().size(); ++i)
    EXPECT_EQ(plain.grads().entries()[i].value.to_vector<float>(), recompute.grads().entries()[i].value.to_vector<float>())
        << plain.grads().entries()[i].name;
}

TEST(Rwkv4Model, BadBatchGivesClearError) {
  Rwkv4Model m(tiny_shape(), DType::F32);
  Tensor tokens = token_batch(2, 3, 11, 1), targets = token_batch(2, 4, 11, 1);
  test::expect_error([&] { m.forward_loss(tokens, targets); }, {"targets", "[2, 4]", "expected [2, 3]"});
  Tensor bad = Tensor::from_vector<int32_t>({0, 11}, {1, 2});
  test::expect_error([&] { m.forward_loss(bad, bad); }, {"token id 11", "vocabulary"});
}

}  // namespace
}  // namespace rwkv


namespace rwkv {
namespace {

// forward_logit_rows (rwkv-eval's scored rows) gives those rows of
// forward_logits, in the order asked, repeats included. The head runs on the
// asked rows only, so the GEMM sees another M: equal up to its rounding (a
// BLAS may block M differently), far inside 1e-5.
TEST(Rwkv4Model, LogitRowsAreThoseRowsOfTheLogits) {
  const Rwkv4Shape s = tiny_shape();
  Rwkv4Model m(s, DType::F32);
  randomise(m.params(), 401);
  const int64_t B = 2, T = 7, V = s.vocab_size;
  Tensor tokens = token_batch(B, T, V, 10);
  Tensor all = Tensor::empty({B, T, V}, DType::F32);
  m.forward_logits(tokens, all);
  const std::vector<int32_t> rows = {13, 0, 6, 7, 6};
  Tensor picked = Tensor::empty({static_cast<int64_t>(rows.size()), V}, DType::F32);
  m.forward_logit_rows(tokens, rows, picked);
  const Tensor all_rows = all.view({B * T, V});
  for (size_t r = 0; r < rows.size(); ++r)
    test::expect_close(picked.slice_rows(static_cast<int64_t>(r), 1).clone(), all_rows.slice_rows(rows[r], 1).clone(), 1e-5,
                       1e-5, str_cat("row ", rows[r]));
  Tensor none = Tensor::empty({0, V}, DType::F32);
  EXPECT_NO_THROW(m.forward_logit_rows(tokens, {}, none));
  test::expect_error([&] { m.forward_logit_rows(tokens, {14}, picked); }, {"row 14 is outside the 14 positions"});
  test::expect_error([&] { m.forward_logit_rows(tokens, {0, 1}, picked); }, {"out", "[rows, V]"});
  // Scoring is forward only: no gradient buffers were allocated (they would
  // double an evaluated model's memory).
  EXPECT_FALSE(m.holds_grads());
  m.stage_loss(0, token_batch(B, T, V, 11));
  EXPECT_FALSE(m.holds_grads());
  // The first backward allocates them zeroed: the same gradients as a model
  // whose grads() were zeroed by hand before.
  Rwkv4Model zeroed(s, DType::F32);
  for (size_t e = 0; e < zeroed.params().entries().size(); ++e)
    zeroed.params().entries()[e].value.copy_from(m.params().entries()[e].value);
  zeroed.grads().zero_all();
  EXPECT_TRUE(zeroed.holds_grads());
  const Tensor targets = token_batch(B, T, V, 12);
  EXPECT_EQ(m.forward_backward(tokens, targets, 0.5f, 1.0f), zeroed.forward_backward(tokens, targets, 0.5f, 1.0f));
  EXPECT_TRUE(m.holds_grads());
  for (size_t e = 0; e < m.grads().entries().size(); ++e)
    EXPECT_EQ(m.grads().entries()[e].value.to_vector<float>(), zeroed.grads().entries()[e].value.to_vector<float>())
        << m.grads().entries()[e].name;
}

// The RNN form, fed one token at a time or in uneven chunks, gives the
// sequence forward's logits.
TEST(Rwkv4Recurrent, MatchesSequenceForward) {
  const Rwkv4Shape s = tiny_shape();
  Rwkv4Model m(s, DType::F64);
  randomise(m.params(), 400);
  const int64_t B = 2, T = 7;
  Tensor tokens = token_batch(B, T, s.vocab_size, 9);
  Tensor expected = Tensor::empty({B, T, s.vocab_size}, DType::F64);
  m.forward_logits(tokens, expected);
  for (std::vector<int64_t> chunks : {std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1}, std::vector<int64_t>{3, 4},
                                      std::vector<int64_t>{7}}) {
    Rwkv4State state = Rwkv4State::fresh(s, B, DType::F64);
    Tensor got = Tensor::empty({B, T, s.vocab_size}, DType::F64);
    int64_t t0 = 0;
    for (int64_t len : chunks) {
      std::vector<int32_t> ids;
      auto all = tokens.to_vector<int32_t>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = t0; t < t0 + len; ++t) ids.push_back(all[static_cast<size_t>(b * T + t)]);
      Tensor chunk = Tensor::from_vector<int32_t>(ids, {B, len});
      Tensor logits = Tensor::empty({B, len, s.vocab_size}, DType::F64);
      rwkv4_forward_recurrent(m.tensors(), s, chunk, state, logits);
      auto lv = logits.to_vector<double>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < len; ++t)
          for (int64_t v = 0; v < s.vocab_size; ++v)
            got.data<double>()[(b * T + t0 + t) * s.vocab_size + v] = lv[static_cast<size_t>((b * len + t) * s.vocab_size + v)];
      t0 += len;
    }
    test::expect_close(got, expected, 1e-12, 1e-12, "recurrent logits, " + std::to_string(chunks.size()) + " chunks");
  }
}

}  // namespace
}  // namespace rwkv

namespace rwkv {
namespace {

// A slot reuses its buffers for any later (B, T) that fits (rwkv-eval changes
// shape nearly every batch) and grows them for a larger one. Reused memory
// holds the last batch's values, so every result must equal a fresh model's,
// bit for bit: a kernel that read a buffer before writing it would show here.
TEST(Rwkv4Model, SlotBuffersAreReusedForSmallerBatchesWithFreshResults) {
  const Rwkv4Shape s{2, 16, 40, 64};
  for (bool recompute : {false, true}) {
    Rwkv4Model reused(s, DType::F32, recompute);
    randomise(reused.params(), 700);
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{2, 9}, {1, 5}, {3, 4}, {2, 12}, {1, 3}};
    std::vector<int64_t> held, fresh_held;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto [B, T] = shapes[i];
      Rwkv4Model fresh(s, DType::F32, recompute);
      for (size_t e = 0; e < fresh.params().entries().size(); ++e)
        fresh.params().entries()[e].value.copy_from(reused.params().entries()[e].value);
      const Tensor tokens = token_batch(B, T, s.vocab_size, 20 + i), targets = token_batch(B, T, s.vocab_size, 40 + i);
      reused.grads().zero_all();
      fresh.grads().zero_all();
      const float scale = 1.0f / static_cast<float>(B * T);
      EXPECT_EQ(reused.forward_backward(tokens, targets, scale, 1.0f), fresh.forward_backward(tokens, targets, scale, 1.0f))
          << "batch " << B << "x" << T << ", recompute " << recompute;
      for (size_t e = 0; e < fresh.grads().entries().size(); ++e)
        EXPECT_EQ(reused.grads().entries()[e].value.to_vector<float>(), fresh.grads().entries()[e].value.to_vector<float>())
            << fresh.grads().entries()[e].name << ", batch " << B << "x" << T;
      Tensor logits_reused = Tensor::empty({B, T, s.vocab_size}, DType::F32), logits_fresh = logits_reused.clone();
      reused.forward_logits(tokens, logits_reused);
      fresh.forward_logits(tokens, logits_fresh);
      EXPECT_EQ(logits_reused.to_vector<float>(), logits_fresh.to_vector<float>()) << "batch " << B << "x" << T;
      held.push_back(reused.held_activation_bytes());
      fresh_held.push_back(fresh.held_activation_bytes());
    }
    // 18 positions, then 5 and 12 fit in them; 24 grows every buffer to what a
    // fresh model holds for it; 3 fits again.
    EXPECT_EQ(held, (std::vector<int64_t>{fresh_held[0], fresh_held[0], fresh_held[0], fresh_held[3], fresh_held[3]}))
        << "recompute " << recompute;
    EXPECT_EQ(fresh_held[3] * 18, fresh_held[0] * 24) << "every buffer is a multiple of B*T";
    EXPECT_LT(fresh_held[1], fresh_held[0]);
  }
}

}  // namespace
}  // namespace rwkv
