// RWKV-4 weights in one file with the reference names: safetensors (what
// rwkv-train writes as rwkv-final.safetensors and rwkv-ckpt export writes) or
// the reference RWKV-LM's own .pth (torch.save of the state dict, read
// without Python: checkpoint/torch_file.h): the model shape they imply, and
// the tensors read into a parameter store.
#pragma once

#include <memory>

#include "checkpoint/tensor_source.h"
#include "data/tokenizer.h"
#include "trainer/parameters.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {

// The model shape of the weights (emb.weight [V, C], blocks.0.ffn.key.weight
// [F, C], one blocks.N.ln1.weight per block), so that any RWKV-4 weights
// load; throws naming the file when they are not RWKV-4's.
Rwkv4Shape shape_of(const checkpoint::TensorSource& file);

// Every tensor of params (the reference names) from the file, converted to
// params' dtype and from the reference's [1, 1, C] vectors where needed; a
// missing tensor or a wrong shape is an error naming the file and tensor.
void read_weights(const checkpoint::TensorSource& file, ParameterStore& params);

// The whole model of the file on `device` in `precision` (f32 masters, bf16
// compute copies refreshed from them), for the tools that run weights: a
// forward-only model, so its blocks share their activation buffers
// (recompute's layout) and it holds no gradients until asked.
std::unique_ptr<Rwkv4Model> load_rwkv4(const checkpoint::TensorSource& file, Device device = Device::cpu(),
                                       Precision precision = Precision::FP32);

// Throws unless every id of tokenizer is a row of the model's vocabulary.
void expect_tokenizer_fits(const data::Tokenizer& tokenizer, const Rwkv4Shape& shape);

}  // namespace rwkv
