// PyTorch checkpoints as torch.save writes them since 1.6 (the reference
// RWKV-LM's .pth files): a zip archive, entries stored uncompressed,
//
//   <archive>/data.pkl      the pickle of the state dict (checkpoint/torch_pickle.h)
//   <archive>/byteorder     "little"
//   <archive>/data/<key>    the raw little-endian bytes of storage <key>
//   <archive>/version       "3"
//
// where <archive> is any folder name (torch uses the file's stem). The zip
// itself goes through libzip. Older torch's non-zip format (a bare pickle
// followed by storages) is refused with a hint to re-save.
#pragma once

#include <string>
#include <vector>
#include <zip.h>

#include "checkpoint/safetensors.h"
#include "checkpoint/tensor_source.h"
#include "checkpoint/torch_pickle.h"

namespace rwkv::checkpoint {

// What a file's first bytes say it is: a torch.save zip archive (PK\3\4),
// torch's format before 1.6 (a bare pickle: 0x80), or neither.
enum class TorchSaveFormat { None, Zip, Legacy };
TorchSaveFormat torch_save_format(const std::string& path);

class TorchFile : public TensorSource {
 public:
  explicit TorchFile(const std::string& path);  // reads and checks data.pkl; throws naming the path
  ~TorchFile() override;
  TorchFile(const TorchFile&) = delete;
  TorchFile& operator=(const TorchFile&) = delete;

  const std::string& path() const override { return path_; }
  const std::vector<Info>& tensors() const override { return infos_; }
  void read_into(const std::string& name, Tensor& out) const override;
  const std::vector<TorchTensorRecord>& records() const { return records_; }

 private:
  std::string path_;
  std::string prefix_;  // "<archive>/"
  zip_t* zip_ = nullptr;
  std::vector<TorchTensorRecord> records_;
  std::vector<Info> infos_;
};

// Writes tensors (copied from any device; f32, bf16, f64, i32, i64) as
// torch.save(OrderedDict(tensors)) would, so torch.load (and ChatRWKV, which
// loads the reference's .pth) reads them; atomically (temporary name, fsync,
// rename). archive_name is the folder inside the zip.
void write_torch_file(const std::string& path, const NamedTensors& tensors, const std::string& archive_name = "archive");

}  // namespace rwkv::checkpoint
