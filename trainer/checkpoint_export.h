// Checkpoints to and from the ecosystem: one consolidated safetensors file
// with the reference RWKV-LM names and shapes (what ChatRWKV, rwkv.cpp and
// Hugging Face converters read), and back into a checkpoint to fine-tune from.
#pragma once

#include <optional>
#include <string>

#include "checkpoint/checkpoint_store.h"
#include "core/dtype.h"
#include "trainer/rwkv4_model.h"
#include "trainer/weights_file.h"

namespace rwkv::trainer {

// The model shape from a checkpoint's global tensor shapes.
Rwkv4Shape shape_of(const checkpoint::Manifest& manifest, const std::string& origin);

// Writes every parameter of a committed checkpoint, whole (slices of any
// layout assembled, no vocabulary padding), in the reference order, as f32 or
// bf16: a PyTorch state dict when out_path ends in .pth or .pt (what the
// reference RWKV-LM saves and ChatRWKV loads), else safetensors. Returns the
// number of tensors.
int64_t export_weights(const checkpoint::LoadedCheckpoint& ckpt, const std::string& out_path, DType dtype);

// Rewrites a weights file (safetensors or .pth) in the format out_path names
// (as export_weights picks it), every tensor in the file's order and names,
// floats cast to `dtype` when given (f32 or bf16). Returns the tensor count.
int64_t convert_weights(const std::string& in_path, const std::string& out_path, std::optional<DType> dtype);

// True for the .pth and .pt paths export writes as PyTorch files.
bool is_torch_path(const std::string& path);

// The config_digest of a checkpoint rwkv-ckpt import wrote: weights without a
// training config of their own.
inline constexpr const char* kImportedConfigDigest = "imported";

// Turns an exported (or any RWKV-4 safetensors or .pth) file into a committed
// checkpoint of step 0 under root (f32 parameters, zero AdamW moments), which
// `rwkv-train --resume <root>/step_00000000` continues from. Returns its directory.
std::string import_weights(const std::string& weights_path, const std::string& root);

}  // namespace rwkv::trainer
