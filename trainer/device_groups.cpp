#include "trainer/device_groups.h"

#include "core/error.h"
#include "parallel/nccl_comm.h"

namespace rwkv::trainer {

DeviceCommKind device_comm_kind(Device device, int group_size) {
  if (group_size <= 1) return DeviceCommKind::None;
  return device.is_cuda() ? DeviceCommKind::Nccl : DeviceCommKind::Mpi;
}

const char* device_comm_kind_name(DeviceCommKind kind) {
  switch (kind) {
    case DeviceCommKind::None: return "none";
    case DeviceCommKind::Mpi: return "mpi";
    case DeviceCommKind::Nccl: return "nccl";
  }
  return "?";
}

Device select_rank_device(Device requested, parallel::ProcessGroups* groups) {
  if (requested.is_cpu() || groups == nullptr) return requested;
  // Several ranks on a node share its GPUs by node-local rank; without NCCL
  // (a CUDA build that did not find it) there is no way to pick for them
  // that the communication could follow, so that is an error below.
  if (!parallel::nccl_available()) return requested;
  return Device::cuda(parallel::select_cuda_device(groups->world().handle()));
}

DeviceGroups::DeviceGroups(parallel::ProcessGroups* groups, Device device) : groups_(groups), device_(device) {
  if (groups_ == nullptr) return;
  const bool any_device_traffic = groups_->tp().size() > 1 || groups_->dp().size() > 1 || groups_->pp().size() > 1;
  if (device_.is_cuda() && any_device_traffic) {
    RWKV_CHECK(parallel::nccl_available(), "device: cuda with dp=", groups_->dp().size(), " x tp=", groups_->tp().size(),
               " x pp=", groups_->pp().size(), " needs NCCL to move GPU tensors between ranks, and this build has none",
               "\n  ---> HINT: install NCCL (libnccl-dev) and rebuild with -DRWKV_CUDA=ON, or use one rank per job");
  }
  // The same order on every rank: each NCCL communicator is created
  // collectively over its group.
  tp_ = pick(parallel::GroupKind::Tp);
  dp_ = pick(parallel::GroupKind::Dp);
  pp_ = pick(parallel::GroupKind::Pp);
}

parallel::Communicator* DeviceGroups::pick(parallel::GroupKind group) {
  parallel::MpiCommunicator& mpi = groups_->group(group);
  switch (device_comm_kind(device_, mpi.size())) {
    case DeviceCommKind::None: return nullptr;
    case DeviceCommKind::Mpi: return &mpi;
    case DeviceCommKind::Nccl: {
      std::unique_ptr<parallel::Communicator>& owned = nccl_[static_cast<size_t>(group)];
      owned = parallel::make_nccl_communicator(mpi, device_.index);
      return owned.get();
    }
  }
  return nullptr;
}

DeviceCommKind DeviceGroups::kind(parallel::GroupKind group) const {
  if (groups_ == nullptr) return DeviceCommKind::None;
  return device_comm_kind(device_, groups_->group(group).size());
}

uint64_t DeviceGroups::extra_bytes_sent(parallel::GroupKind group) const {
  const size_t i = static_cast<size_t>(group);
  return i < nccl_.size() && nccl_[i] ? nccl_[i]->stats().total_sent() : 0;
}

}  // namespace rwkv::trainer
