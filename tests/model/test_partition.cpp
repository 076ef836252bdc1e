// Model partitions that run in one process: pipeline stages chained by hand
// and a padded vocabulary, against the whole model.
#include <tuple>

#include "kernels/reduce.h"
#include "test_util.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

const Rwkv4Shape kShape{4, 16, 23, 64};

Tensor batch(int64_t B, int64_t T, uint64_t seed) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(static_cast<int32_t>((i * 7 + seed * 5 + (i * i) % 3) % kShape.vocab_size));
  return Tensor::from_vector<int32_t>(ids, {B, T});
}

// The whole model's parameters, perturbed so that every path carries gradient.
ParameterStore reference_parameters() {
  ParameterStore whole = declare_rwkv4_parameters(kShape, DType::F64);
  init_rwkv4_reference(whole, kShape, 7, 0.1);
  uint64_t seed = 50;
  for (NamedTensor& e : whole.entries()) {
    Tensor noise = test::random_tensor(e.value.shape(), DType::F64, seed++, -0.1, 0.1);
    add_(e.value, noise);
  }
  return whole;
}

// A partition initialised by itself (one global tensor at a time, the whole
// model never in memory) holds exactly the slices of the whole model's init,
// for pipeline stages, tensor-parallel ranks, both, and a padded vocabulary.
TEST(Rwkv4Partition, PartitionInitEqualsTheSlicesOfTheWholeInit) {
  ParameterStore whole = declare_rwkv4_parameters(kShape, DType::F32);
  init_rwkv4_reference(whole, kShape, 11, 0.1);
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> parts = {
      // layer_begin, layer_end, tp_size, tp_rank, padded vocabulary
      {0, 2, 1, 0, 23}, {2, 4, 1, 0, 23}, {1, 3, 1, 0, 23}, {0, 4, 2, 1, 24}, {2, 4, 4, 3, 24}, {0, 1, 4, 0, 32}};
  for (const auto& [begin, end, tp, rank, vocab] : parts) {
    Rwkv4Partition part = Rwkv4Partition::whole(kShape);
    part.layer_begin = begin, part.layer_end = end, part.tp_size = tp, part.tp_rank = rank, part.padded_vocab = vocab;
    ParameterStore mine = declare_rwkv4_parameters(kShape, DType::F32, Device::cpu(), part);
    init_rwkv4_reference(mine, kShape, 11, 0.1);
    ParameterStore expected = mine.zeros_like();
    copy_partition_slices(whole, expected);
    for (size_t i = 0; i < mine.entries().size(); ++i)
      EXPECT_EQ(mine.entries()[i].value.to_vector<float>(), expected.entries()[i].value.to_vector<float>())
          << mine.entries()[i].name << " of layers [" << begin << ", " << end << ") tp " << rank << "/" << tp;
  }
  // The specs are what declare allocates, in the same order.
  const std::vector<Rwkv4TensorSpec> specs = rwkv4_tensor_specs(kShape);
  ASSERT_EQ(specs.size(), whole.entries().size());
  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].name, whole.entries()[i].name);
    EXPECT_EQ(specs[i].global_shape, whole.entries()[i].value.shape());
  }
}

TEST(Rwkv4Partition, StageLayersAndPadding) {
  EXPECT_EQ(stage_layers(10, 3, 0), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(stage_layers(10, 3, 1), (std::pair<int64_t, int64_t>{4, 7}));
  EXPECT_EQ(stage_layers(10, 3, 2), (std::pair<int64_t, int64_t>{7, 10}));
  EXPECT_EQ(stage_layers(10, 2, 1, {0, 3, 10}), (std::pair<int64_t, int64_t>{3, 10}));
  EXPECT_EQ(padded_vocab_size(50277, 1, 64), 50304);
  EXPECT_EQ(padded_vocab_size(50277, 4, 1), 50280);
  test::expect_error([] { stage_layers(2, 3, 0); }, {"pp=3", "n_layer=2"});
  test::expect_error([] { stage_layers(10, 2, 0, {0, 5, 5}); }, {"boundaries"});
  Rwkv4Partition bad = Rwkv4Partition::whole(kShape);
  bad.tp_size = 3;
  bad.padded_vocab = 24;
  test::expect_error([&] { bad.validate(kShape); }, {"tp=3", "n_embd=16"});
}

// Stages chained by hand (activations forward, gradients back) give the whole
// model's loss and gradients bit for bit: the same ops in the same order.
TEST(Rwkv4Partition, PipelineStagesMatchTheWholeModel) {
  const ParameterStore whole_params = reference_parameters();
  Rwkv4Model whole(kShape, DType::F64);
  copy_partition_slices(whole_params, whole.params());
  const Tensor tokens = batch(2, 6, 1), targets = batch(2, 6, 2);
  whole.grads().zero_all();
  const double loss = whole.forward_backward(tokens, targets, 1.0f / 12, 1.0f);

  for (const std::vector<int64_t>& bounds : {std::vector<int64_t>{0, 2, 4}, std::vector<int64_t>{0, 1, 3, 4}}) {
    const int64_t stages = static_cast<int64_t>(bounds.size()) - 1;
    std::vector<std::unique_ptr<Rwkv4Model>> models;
    for (int64_t s = 0; s < stages; ++s) {
      Rwkv4Partition part = Rwkv4Partition::whole(kShape);
      std::tie(part.layer_begin, part.layer_end) = stage_layers(kShape.n_layer, stages, s, bounds);
      models.push_back(std::make_unique<Rwkv4Model>(kShape, DType::F64, false, Device::cpu(), part));
      copy_partition_slices(whole_params, models.back()->params());
      models.back()->grads().zero_all();
    }
    for (int64_t s = 0; s < stages; ++s)
      models[static_cast<size_t>(s)]->stage_forward(0, tokens, s ? models[static_cast<size_t>(s - 1)]->stage_output(0) : Tensor());
    double stage_loss = 0;
    for (int64_t s = stages - 1; s >= 0; --s) {
      const Tensor grad_in = s + 1 < stages ? models[static_cast<size_t>(s + 1)]->stage_input_grad(0) : Tensor();
      stage_loss += models[static_cast<size_t>(s)]->stage_backward(0, targets, 1.0f / 12, 1.0f, grad_in);
    }
    EXPECT_EQ(stage_loss, loss);
    size_t seen = 0;
    for (const auto& m : models) {
      for (const NamedTensor& g : m->grads().entries()) {
        EXPECT_EQ(g.value.to_vector<double>(), whole.grads().at(g.name).to_vector<double>()) << g.name;
        ++seen;
      }
    }
    EXPECT_EQ(seen, whole.grads().entries().size());
  }
}

// Two micro-batches in two slots, GPipe order (all forwards, then all
// backwards): the accumulated gradients equal two whole-model steps.
TEST(Rwkv4Partition, PipelineSlotsKeepMicroBatchesApart) {
  const ParameterStore whole_params = reference_parameters();
  Rwkv4Model whole(kShape, DType::F64);
  copy_partition_slices(whole_params, whole.params());
  const Tensor tokens[2] = {batch(2, 6, 1), batch(2, 6, 5)}, targets[2] = {batch(2, 6, 2), batch(2, 6, 6)};
  whole.grads().zero_all();
  double loss = 0;
  for (int m = 0; m < 2; ++m) loss += whole.forward_backward(tokens[m], targets[m], 1.0f / 24, 0.5f);
  std::vector<std::unique_ptr<Rwkv4Model>> models;
  for (int64_t s = 0; s < 2; ++s) {
    Rwkv4Partition part = Rwkv4Partition::whole(kShape);
    std::tie(part.layer_begin, part.layer_end) = stage_layers(kShape.n_layer, 2, s);
    models.push_back(std::make_unique<Rwkv4Model>(kShape, DType::F64, false, Device::cpu(), part));
    copy_partition_slices(whole_params, models.back()->params());
    models.back()->grads().zero_all();
  }
  for (int m = 0; m < 2; ++m) {
    models[0]->stage_forward(m, tokens[m]);
    models[1]->stage_forward(m, tokens[m], models[0]->stage_output(m));
  }
  double stage_loss = 0;
  for (int m = 0; m < 2; ++m) {
    stage_loss += models[1]->stage_backward(m, targets[m], 1.0f / 24, 0.5f);
    models[0]->stage_backward(m, targets[m], 1.0f / 24, 0.5f, models[1]->stage_input_grad(m));
  }
  EXPECT_EQ(stage_loss, loss);
  for (const auto& m : models)
    for (const NamedTensor& g : m->grads().entries())
      EXPECT_EQ(g.value.to_vector<double>(), whole.grads().at(g.name).to_vector<double>()) << g.name;
}

// A vocabulary padded to a multiple of 8: padded rows are never predicted and
// get no gradient; everything else matches the unpadded model.
TEST(Rwkv4Partition, PaddedVocabularyMatchesTheUnpaddedModel) {
  const ParameterStore whole_params = reference_parameters();
  Rwkv4Model whole(kShape, DType::F64);
  copy_partition_slices(whole_params, whole.params());
  Rwkv4Partition part = Rwkv4Partition::whole(kShape);
  part.padded_vocab = padded_vocab_size(kShape.vocab_size, 1, 8);
  ASSERT_EQ(part.padded_vocab, 24);
  Rwkv4Model padded(kShape, DType::F64, false, Device::cpu(), part);
  copy_partition_slices(whole_params, padded.params());
  EXPECT_EQ(padded.params().at("head.weight").dim(0), 24);
  const Tensor tokens = batch(2, 5, 3), targets = batch(2, 5, 4);
  whole.grads().zero_all();
  padded.grads().zero_all();
  const double expected = whole.forward_backward(tokens, targets, 0.1f, 1.0f);
  EXPECT_NEAR(padded.forward_backward(tokens, targets, 0.1f, 1.0f), expected, 1e-12);
  for (const NamedTensor& g : padded.grads().entries()) {
    Tensor reference = whole.grads().at(g.name);
    Tensor got = g.value.dim(0) != reference.dim(0) ? g.value.slice_rows(0, reference.dim(0)).clone() : g.value;
    test::expect_close(got, reference, 1e-12, 1e-14, g.name);
    if (g.value.dim(0) != reference.dim(0)) {
      for (double x : g.value.slice_rows(reference.dim(0), 1).to_vector<double>()) EXPECT_EQ(x, 0.0) << g.name;
    }
  }
}

}  // namespace
}  // namespace rwkv
