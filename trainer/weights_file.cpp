#include "trainer/weights_file.h"

#include "core/error.h"

namespace rwkv {

Rwkv4Shape shape_of(const checkpoint::SafetensorsFile& file) {
  RWKV_CHECK(file.contains("emb.weight") && file.contains("blocks.0.ffn.key.weight"), file.path(),
             ": not RWKV-4 weights (no emb.weight or blocks.0.ffn.key.weight)");
  const Shape& emb = file.entry("emb.weight").shape;
  const Shape& key = file.entry("blocks.0.ffn.key.weight").shape;
  RWKV_CHECK(emb.size() == 2 && key.size() == 2, file.path(), ": emb.weight is ", shape_str(emb),
             " and blocks.0.ffn.key.weight ", shape_str(key), "; RWKV-4 has [V, C] and [F, C]");
  Rwkv4Shape shape{0, emb[1], emb[0], key[0]};
  while (file.contains(str_cat("blocks.", shape.n_layer, ".ln1.weight"))) ++shape.n_layer;
  return shape;
}

void read_weights(const checkpoint::SafetensorsFile& file, ParameterStore& params) {
  for (NamedTensor& e : params.entries()) {
    RWKV_CHECK(file.contains(e.name), file.path(), ": tensor '", e.name,
               "' is missing\n  ---> HINT: export with rwkv-ckpt export, or convert the reference's .pth to safetensors");
    Tensor t = file.read(e.name);
    if (t.shape() != e.value.shape() && t.numel() == e.value.numel()) t = t.view(e.value.shape());  // [C] vs [1,1,C]
    RWKV_CHECK(t.shape() == e.value.shape(), file.path(), ": '", e.name, "' has shape ", shape_str(t.shape()),
               ", the reference shape is ", shape_str(e.value.shape()));
    e.value.copy_from(t.dtype() == e.value.dtype() ? t : t.to_dtype(e.value.dtype()));
  }
}

std::unique_ptr<Rwkv4Model> load_rwkv4(const checkpoint::SafetensorsFile& file, Device device, Precision precision) {
  auto model = std::make_unique<Rwkv4Model>(shape_of(file), DType::F32, false, device, Rwkv4Partition{}, nullptr, precision);
  read_weights(file, model->params());
  model->refresh_compute_copies();  // bf16: the copies from the f32 weights
  return model;
}

void expect_tokenizer_fits(const data::Tokenizer& tokenizer, const Rwkv4Shape& shape) {
  RWKV_CHECK(tokenizer.vocab_size() <= shape.vocab_size, "tokenizer ", tokenizer.name(), " has ", tokenizer.vocab_size(),
             " tokens but the model only ", shape.vocab_size, "\n  ---> HINT: use the tokenizer the model was trained with");
}

}  // namespace rwkv
