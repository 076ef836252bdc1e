// rwkv-ckpt export / import: one consolidated safetensors file with the
// reference names and shapes, and back into a checkpoint, bit for bit.
#include <filesystem>

#include "model_test_util.h"
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

}  // namespace
}  // namespace rwkv
