// A file of named tensors, whatever its format: what the tools that load
// whole-model weights (rwkv-eval, rwkv-generate, rwkv-ckpt import) read.
// safetensors (checkpoint/safetensors.h) and PyTorch's torch.save archives
// (checkpoint/torch_file.h, the reference RWKV-LM's .pth files) both are one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv::checkpoint {

class TensorSource {
 public:
  struct Info {
    std::string name;
    DType dtype;  // what read_into delivers (a file's f16 is widened to f32)
    Shape shape;
  };
  virtual ~TensorSource() = default;
  virtual const std::string& path() const = 0;
  virtual const std::vector<Info>& tensors() const = 0;  // in the file's order
  // Copies one tensor into out (any device), which must have its Info's dtype
  // and shape; throws naming the file and tensor otherwise.
  virtual void read_into(const std::string& name, Tensor& out) const = 0;

  const Info* find(const std::string& name) const;  // nullptr when absent
  const Info& info(const std::string& name) const;  // throws naming the file when absent
};

// Opens path by its content: a zip archive (PK\3\4) is a torch.save file,
// anything else must be safetensors. Errors name the path.
std::unique_ptr<TensorSource> open_tensor_file(const std::string& path);

}  // namespace rwkv::checkpoint
