#include "trainer/checkpoint_export.h"

#include <filesystem>

#include "checkpoint/torch_file.h"

namespace rwkv::trainer {

bool is_torch_path(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".pth" || ext == ".pt";
}

Rwkv4Shape shape_of(const checkpoint::Manifest& m, const std::string& origin) {
  const checkpoint::ManifestTensor* emb = m.find("emb.weight", "param");
  const checkpoint::ManifestTensor* key = m.find("blocks.0.ffn.key.weight", "param");
  RWKV_CHECK(emb && key && emb->shape.size() == 2 && key->shape.size() == 2, origin,
             ": not an RWKV-4 checkpoint (no emb.weight or blocks.0.ffn.key.weight)");
  Rwkv4Shape s{0, emb->shape[1], emb->shape[0], key->shape[0]};
  while (m.find(str_cat("blocks.", s.n_layer, ".ln1.weight"), "param")) ++s.n_layer;
  return s;
}

namespace {
void write_weights(const std::string& out_path, const checkpoint::NamedTensors& tensors,
                   const checkpoint::Metadata& metadata) {
  if (is_torch_path(out_path)) {
    checkpoint::write_torch_file(out_path, tensors, std::filesystem::path(out_path).stem().string());
  } else {
    checkpoint::write_safetensors(out_path, tensors, metadata);
  }
}
}  // namespace

int64_t export_weights(const checkpoint::LoadedCheckpoint& ckpt, const std::string& out_path, DType dtype) {
  RWKV_CHECK(dtype == DType::F32 || dtype == DType::BF16, "export: dtype must be f32 or bf16");
  const Rwkv4Shape shape = shape_of(ckpt.manifest(), ckpt.dir());
  const ParameterStore reference = declare_rwkv4_parameters(shape, DType::F32);  // names, shapes, order
  checkpoint::NamedTensors tensors;
  for (const NamedTensor& e : reference.entries()) {
    Tensor t = Tensor::empty(e.value.shape(), DType::F32);
    ckpt.read_into(e.name, "param", t);
    tensors.emplace_back(e.name, dtype == DType::F32 ? t : t.to_dtype(dtype));
  }
  write_weights(out_path, tensors,
                {{"format", "pt"}, {"model", "rwkv4"}, {"source", ckpt.dir()}, {"step", std::to_string(ckpt.manifest().step)}});
  return static_cast<int64_t>(tensors.size());
}

int64_t convert_weights(const std::string& in_path, const std::string& out_path, std::optional<DType> dtype) {
  RWKV_CHECK(!dtype || *dtype == DType::F32 || *dtype == DType::BF16, "convert: dtype must be f32 or bf16");
  std::error_code ignored;
  RWKV_CHECK(!std::filesystem::equivalent(in_path, out_path, ignored), "convert: ", out_path, " is the input file",
             "\n  ---> HINT: write to another path");
  const std::unique_ptr<checkpoint::TensorSource> in = checkpoint::open_tensor_file(in_path);
  checkpoint::NamedTensors tensors;
  for (const checkpoint::TensorSource::Info& info : in->tensors()) {
    Tensor t = Tensor::empty(info.shape, info.dtype);
    in->read_into(info.name, t);
    const bool is_float = t.dtype() == DType::F32 || t.dtype() == DType::BF16 || t.dtype() == DType::F64;
    tensors.emplace_back(info.name, dtype && is_float && t.dtype() != *dtype ? t.to_dtype(*dtype) : t);
  }
  write_weights(out_path, tensors, {{"format", "pt"}, {"source", in_path}});
  return static_cast<int64_t>(tensors.size());
}

std::string import_weights(const std::string& weights_path, const std::string& root) {
  const std::unique_ptr<checkpoint::TensorSource> file = checkpoint::open_tensor_file(weights_path);
  ParameterStore params = declare_rwkv4_parameters(rwkv::shape_of(*file), DType::F32);
  read_weights(*file, params);
  checkpoint::SaveRequest request;
  request.config_digest = kImportedConfigDigest;
  for (NamedTensor& e : params.entries()) {
    request.tensors.push_back({e.name, "param", e.value, {}, {}});
    request.tensors.push_back({e.name, "adam_m", Tensor::zeros(e.value.shape(), DType::F32), {}, {}});
    request.tensors.push_back({e.name, "adam_v", Tensor::zeros(e.value.shape(), DType::F32), {}, {}});
  }
  checkpoint::CheckpointStore store(root, 0, 0);
  return store.save(request);
}

}  // namespace rwkv::trainer
