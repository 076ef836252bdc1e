#include "trainer/weights_file.h"

#include "core/error.h"

namespace rwkv {

Rwkv4Shape shape_of(const checkpoint::TensorSource& file) {
  const checkpoint::TensorSource::Info *emb_info = file.find("emb.weight"), *key_info = file.find("blocks.0.ffn.key.weight");
  RWKV_CHECK(emb_info && key_info, file.path(), ": not RWKV-4 weights (no emb.weight or blocks.0.ffn.key.weight)");
  const Shape &emb = emb_info->shape, &key = key_info->shape;
  RWKV_CHECK(emb.size() == 2 && key.size() == 2, file.path(), ": emb.weight is ", shape_str(emb),
             " and blocks.0.ffn.key.weight ", shape_str(key), "; RWKV-4 has [V, C] and [F, C]");
  Rwkv4Shape shape{0, emb[1], emb[0], key[0]};
  while (file.find(str_cat("blocks.", shape.n_layer, ".ln1.weight"))) ++shape.n_layer;
  return shape;
}

void read_weights(const checkpoint::TensorSource& file, ParameterStore& params) {
  for (NamedTensor& e : params.entries()) {
    const checkpoint::TensorSource::Info* found = file.find(e.name);
    RWKV_CHECK(found, file.path(), ": tensor '", e.name,
               "' is missing\n  ---> HINT: RWKV-4 weights with the reference names: rwkv-ckpt export writes them, "
               "and the reference's .pth files have them");
    const checkpoint::TensorSource::Info& stored = *found;
    // [C] and [1, 1, C] are the same tensor.
    RWKV_CHECK(shape_numel(stored.shape) == e.value.numel() &&
                   (stored.shape == e.value.shape() || stored.shape.size() != e.value.shape().size()),
               file.path(), ": '", e.name, "' has shape ", shape_str(stored.shape), ", the reference shape is ",
               shape_str(e.value.shape()));
    if (stored.dtype == e.value.dtype()) {
      Tensor target = e.value.view(stored.shape);  // the file's bytes land in the parameter directly
      file.read_into(e.name, target);
    } else {
      Tensor as_stored = Tensor::empty(stored.shape, stored.dtype);
      file.read_into(e.name, as_stored);
      e.value.copy_from(as_stored.to_dtype(e.value.dtype()).view(e.value.shape()));
    }
  }
}

std::unique_ptr<Rwkv4Model> load_rwkv4(const checkpoint::TensorSource& file, Device device, Precision precision) {
  // recompute's buffer layout: every block but its input shares one set of
  // activation buffers. The tools that load weights only run forward, which
  // is the same maths either way, and L sets of [B, T, C]-sized buffers would
  // be most of their activations at scale (a 14B model, 40 blocks, at batch
  // 8 x 100 tokens: ~24 f32 [B, T, C] buffers a block, 15.7 GB, against one
  // shared set plus each block's input, 1.0 GB).
  auto model = std::make_unique<Rwkv4Model>(shape_of(file), DType::F32, /*recompute=*/true, device, Rwkv4Partition{},
                                            nullptr, precision);
  read_weights(file, model->params());
  model->refresh_compute_copies();  // bf16: the copies from the f32 weights
  return model;
}

void expect_tokenizer_fits(const data::Tokenizer& tokenizer, const Rwkv4Shape& shape) {
  RWKV_CHECK(tokenizer.vocab_size() <= shape.vocab_size, "tokenizer ", tokenizer.name(), " has ", tokenizer.vocab_size(),
             " tokens but the model only ", shape.vocab_size, "\n  ---> HINT: use the tokenizer the model was trained with");
}

}  // namespace rwkv
