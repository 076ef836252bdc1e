// rwkv-ckpt export / import: one consolidated safetensors file with the
// reference names and shapes, and back into a checkpoint, bit for bit.
#include <filesystem>

#include "model_test_util.h"
#include "checkpoint/torch_file.h"
#include "trainer/checkpoint_export.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

TEST(CheckpointExport, ExportImportRoundTripWithReferenceNamesAndShapes) {
  const fs::path dir = test::fresh_temp_dir("rwkv_export");
  const Rwkv4Shape shape{3, 16, 37, 64};
  ParameterStore params = declare_rwkv4_parameters(shape, DType::F32);
  test::fill_random(params, 1);
  const std::string saved = test::save_checkpoint(params, (dir / "ckpt").string(), 7);

  const std::string exported = (dir / "model.safetensors").string();
  EXPECT_EQ(trainer::export_weights(checkpoint::LoadedCheckpoint(saved), exported, DType::F32),
            static_cast<int64_t>(params.entries().size()));
  checkpoint::SafetensorsFile file(exported);  // a valid safetensors header, parsed by our strict reader
  ASSERT_EQ(file.entries().size(), params.entries().size());
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const NamedTensor& e = params.entries()[i];
    EXPECT_EQ(file.entries()[i].name, e.name);  // the reference order
    EXPECT_EQ(file.entries()[i].shape, e.value.shape()) << e.name;
  }
  EXPECT_EQ(file.entry("blocks.1.att.time_mix_k").shape, (Shape{1, 1, 16}));
  EXPECT_EQ(file.entry("head.weight").shape, (Shape{37, 16}));

  const std::string imported = trainer::import_weights(exported, (dir / "imported").string());
  checkpoint::LoadedCheckpoint back(imported);
  EXPECT_EQ(back.manifest().step, 0);
  for (const NamedTensor& e : params.entries()) {
    Tensor t = Tensor::empty(e.value.shape(), DType::F32), m = Tensor::empty(e.value.shape(), DType::F32);
    back.read_into(e.name, "param", t);
    back.read_into(e.name, "adam_m", m);
    EXPECT_EQ(t.to_vector<float>(), e.value.to_vector<float>()) << e.name;
    for (float x : m.to_vector<float>()) ASSERT_EQ(x, 0.0f);
  }
  // bf16 export rounds each value to bf16.
  const std::string half = (dir / "model-bf16.safetensors").string();
  trainer::export_weights(checkpoint::LoadedCheckpoint(saved), half, DType::BF16);
  EXPECT_EQ(checkpoint::SafetensorsFile(half).entry("emb.weight").dtype, DType::BF16);
  test::expect_error([&] { trainer::import_weights((dir / "missing.safetensors").string(), (dir / "x").string()); },
                     {"missing.safetensors"});
  fs::remove_all(dir);
}

// The same round trip through the reference's own format: export to .pth
// (a torch.save state dict), then everything that loads weights (rwkv-eval,
// rwkv-generate, import) reads it as it reads the safetensors export.
TEST(CheckpointExport, PthExportLoadsAndImportsLikeTheSafetensorsOne) {
  const fs::path dir = test::fresh_temp_dir("rwkv_export_pth");
  const Rwkv4Shape shape{2, 16, 37, 64};
  ParameterStore params = declare_rwkv4_parameters(shape, DType::F32);
  test::fill_random(params, 2);
  const std::string saved = test::save_checkpoint(params, (dir / "ckpt").string(), 3);
  const std::string pth = (dir / "rwkv-4-test.pth").string(), st = (dir / "rwkv-4-test.safetensors").string();
  for (const std::string& out : {pth, st})
    EXPECT_EQ(trainer::export_weights(checkpoint::LoadedCheckpoint(saved), out, DType::F32),
              static_cast<int64_t>(params.entries().size()));
  EXPECT_TRUE(trainer::is_torch_path(pth));
  EXPECT_FALSE(trainer::is_torch_path(st));
  const std::unique_ptr<checkpoint::TensorSource> torch_file = checkpoint::open_tensor_file(pth);
  ASSERT_EQ(torch_file->tensors().size(), params.entries().size());
  EXPECT_EQ(torch_file->info("blocks.1.att.time_mix_k").shape, (Shape{1, 1, 16}));
  EXPECT_EQ(torch_file->tensors().front().name, "emb.weight");  // the reference order
  const Rwkv4Shape read_shape = shape_of(*torch_file);
  EXPECT_EQ((std::vector<int64_t>{read_shape.n_layer, read_shape.n_embd, read_shape.vocab_size, read_shape.dim_ffn}),
            (std::vector<int64_t>{2, 16, 37, 64}));
  const std::unique_ptr<Rwkv4Model> from_pth = load_rwkv4(*torch_file);
  const std::unique_ptr<Rwkv4Model> from_st = load_rwkv4(*checkpoint::open_tensor_file(st));
  for (size_t i = 0; i < params.entries().size(); ++i) {
    EXPECT_EQ(from_pth->params().entries()[i].value.to_vector<float>(), params.entries()[i].value.to_vector<float>())
        << params.entries()[i].name;
    EXPECT_EQ(from_st->params().entries()[i].value.to_vector<float>(), params.entries()[i].value.to_vector<float>());
  }
  const std::string imported = trainer::import_weights(pth, (dir / "imported").string());
  checkpoint::LoadedCheckpoint back(imported);
  for (const NamedTensor& e : params.entries()) {
    Tensor t = Tensor::empty(e.value.shape(), DType::F32);
    back.read_into(e.name, "param", t);
    EXPECT_EQ(t.to_vector<float>(), e.value.to_vector<float>()) << e.name;
  }
  // bf16 .pth (the reference's released weights are bf16): widened exactly.
  const std::string half = (dir / "rwkv-4-test-bf16.pth").string();
  trainer::export_weights(checkpoint::LoadedCheckpoint(saved), half, DType::BF16);
  const std::unique_ptr<checkpoint::TensorSource> half_file = checkpoint::open_tensor_file(half);
  EXPECT_EQ(half_file->info("emb.weight").dtype, DType::BF16);
  const std::unique_ptr<Rwkv4Model> from_half = load_rwkv4(*half_file);
  EXPECT_EQ(from_half->params().entries()[0].value.to_vector<float>(),
            params.entries()[0].value.to_dtype(DType::BF16).to_dtype(DType::F32).to_vector<float>());
  // convert: .pth -> safetensors -> .pth, the same names, order and bits;
  // with a dtype, every float tensor cast.
  const std::string st2 = (dir / "converted.safetensors").string(), pth2 = (dir / "converted.pth").string();
  EXPECT_EQ(trainer::convert_weights(pth, st2, std::nullopt), static_cast<int64_t>(params.entries().size()));
  EXPECT_EQ(trainer::convert_weights(st2, pth2, std::nullopt), static_cast<int64_t>(params.entries().size()));
  const std::unique_ptr<checkpoint::TensorSource> round = checkpoint::open_tensor_file(pth2);
  ASSERT_EQ(round->tensors().size(), params.entries().size());
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const NamedTensor& e = params.entries()[i];
    EXPECT_EQ(round->tensors()[i].name, e.name);
    Tensor t = Tensor::empty(e.value.shape(), DType::F32);
    round->read_into(e.name, t);
    EXPECT_EQ(t.to_vector<float>(), e.value.to_vector<float>()) << e.name;
  }
  const std::string st_bf16 = (dir / "converted-bf16.safetensors").string();
  trainer::convert_weights(pth, st_bf16, DType::BF16);
  EXPECT_EQ(checkpoint::open_tensor_file(st_bf16)->info("head.weight").dtype, DType::BF16);
  test::expect_error([&] { trainer::convert_weights(pth, pth, std::nullopt); }, {"is the input file"});
  // A transposed matrix has the right element count but not the shape: refused.
  checkpoint::write_torch_file((dir / "transposed.pth").string(),
                               {{"emb.weight", Tensor::zeros({16, 37}, DType::F32)},
                                {"blocks.0.ffn.key.weight", Tensor::zeros({64, 16}, DType::F32)}});
  const std::unique_ptr<checkpoint::TensorSource> transposed =
      checkpoint::open_tensor_file((dir / "transposed.pth").string());
  ParameterStore small = declare_rwkv4_parameters(Rwkv4Shape{1, 16, 37, 64}, DType::F32);
  test::expect_error([&] { read_weights(*transposed, small); }, {"transposed.pth", "'emb.weight' has shape [16, 37]",
                                                                 "reference shape is [37, 16]"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
