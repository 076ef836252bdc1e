// The pickle inside a PyTorch checkpoint (`torch.save(model.state_dict())`,
// the reference RWKV-LM's .pth files): what tensors it names and where their
// bytes are, without running any of it.
//
// torch.save writes a zip archive (checkpoint/torch_file.h) whose data.pkl is
// a pickle (protocol 2) of the state dict. Each tensor in it is the call
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
//                                   requires_grad, backward_hooks)
// where `storage` is a persistent id, the tuple
//   ('storage', torch.<Type>Storage, key, location, numel)
// whose bytes are the archive's record data/<key>. The state dict itself is
// collections.OrderedDict() filled by SETITEMS.
//
// The reader is a small pickle machine that knows those few calls and refuses
// every other one: a pickle can name any Python function, and torch.load runs
// what it names, so a hostile .pth cannot make us run anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv::checkpoint {

// One tensor of a state dict: elements [storage_offset, storage_offset +
// numel) of storage data/<storage_key>, laid out by shape and stride.
struct TorchTensorRecord {
  std::string name;
  std::string storage_key;
  std::string storage_type;   // "FloatStorage", "BFloat16Storage", "HalfStorage", ...
  int64_t storage_numel = 0;  // elements the storage holds (its persistent id says)
  int64_t storage_offset = 0;
  Shape shape;
  std::vector<int64_t> stride;
};

// The element type of a torch storage type name, and its size in bytes.
// HalfStorage (f16, which rwkv-dist has no dtype for) gives element size 2 and
// is_half; others map to a DType. Throws naming origin for any other type.
struct TorchStorageType {
  DType dtype = DType::F32;  // for half: the dtype it is widened to (F32)
  bool is_half = false;
  size_t element_size = 4;
};
TorchStorageType torch_storage_type(const std::string& name, const std::string& origin);
// The storage type name torch uses for a DType (F32 -> "FloatStorage").
std::string torch_storage_name(DType dtype);

// The tensors of the state dict in data.pkl's bytes, in the pickle's order.
// A dict wrapping the state dict under "state_dict", "model" or "module" is
// looked into. origin names the file in errors.
std::vector<TorchTensorRecord> read_torch_state_dict(const std::string& pickle, const std::string& origin);

// data.pkl for tensors (contiguous, each its own storage) in the form
// torch.save writes: protocol 2, an OrderedDict, _rebuild_tensor_v2 calls.
std::string write_torch_state_dict(const std::vector<TorchTensorRecord>& tensors);

}  // namespace rwkv::checkpoint
