#include "checkpoint/tensor_source.h"

#include <filesystem>

#include "checkpoint/safetensors.h"
#include "checkpoint/torch_file.h"
#include "core/error.h"
#include "core/file_io.h"

namespace rwkv::checkpoint {
namespace {

// safetensors through the TensorSource interface: the file as it is.
class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const std::string& path) : file_(path) {
    for (const SafetensorsFile::Entry& e : file_.entries()) infos_.push_back({e.name, e.dtype, e.shape});
  }
  const std::string& path() const override { return file_.path(); }
  const std::vector<Info>& tensors() const override { return infos_; }
  void read_into(const std::string& name, Tensor& out) const override { file_.read_into(name, out); }

 private:
  SafetensorsFile file_;
  std::vector<Info> infos_;
};

}  // namespace

const TensorSource::Info* TensorSource::find(const std::string& name) const {
  for (const Info& i : tensors())
    if (i.name == name) return &i;
  return nullptr;
}

const TensorSource::Info& TensorSource::info(const std::string& name) const {
  const Info* i = find(name);
  RWKV_CHECK(i != nullptr, path(), ": no tensor '", name, "'");
  return *i;
}

std::unique_ptr<TensorSource> open_tensor_file(const std::string& path) {
  RWKV_CHECK(file_exists(path), path, ": no such file\n  ---> HINT: weights are a .safetensors file (rwkv-train "
             "writes rwkv-final.safetensors) or a PyTorch .pth");
  RWKV_CHECK(!std::filesystem::is_directory(path), path, ": a directory, not a weights file\n  ---> HINT: for a "
             "checkpoint directory, rwkv-ckpt export DIR --out FILE writes its weights as one file");
  if (torch_save_format(path) != TorchSaveFormat::None) return std::make_unique<TorchFile>(path);  // its errors name a pre-1.6 file
  return std::make_unique<SafetensorsSource>(path);
}

}  // namespace rwkv::checkpoint
