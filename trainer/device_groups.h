// The communicators a rank's model tensors travel on.
//
//   device: cpu   the MPI groups themselves (parallel/mpi_comm.h)
//   device: cuda  one NCCL communicator per group (parallel/nccl_comm.h), made
//                 from the MPI group of the same ranks (its unique id travels
//                 over that group), on this rank's GPU
//
// Only tensors that live on the device go through these: activations and
// their gradients between tensor-parallel ranks and pipeline stages, gradient
// buckets and ZeRO-1 shards over dp. The few host scalars of a step (the
// loss, the gradient norm, the controller's command, checkpoint agreement)
// stay on the MPI groups, which every backend has.
//
//   DeviceGroups comms(groups, device);          // collective over the world
//   Rwkv4Model model(..., comms.tp());           // null when tp = 1
//   comms.dp()->all_reduce_sum(grad_bucket);     // NCCL on a GPU, MPI on the CPU
#pragma once

#include <array>
#include <memory>

#include "core/device.h"
#include "parallel/comm.h"
#include "parallel/process_groups.h"

namespace rwkv::trainer {

// Which communicator carries a device's tensors: a pure function of the
// device and the layout, so the CPU tests can check the GPU's choice.
enum class DeviceCommKind { None, Mpi, Nccl };
// None for a group of one rank (nothing to communicate), else MPI for CPU
// tensors and NCCL for CUDA tensors.
DeviceCommKind device_comm_kind(Device device, int group_size);
const char* device_comm_kind_name(DeviceCommKind kind);  // "none", "mpi", "nccl"

// The GPU a rank drives: its node-local rank modulo the visible GPUs (CUDA
// builds with NCCL); GPU 0 for a single process. Throws with a hint when no
// GPU is visible.
Device select_rank_device(Device requested, parallel::ProcessGroups* groups);

class DeviceGroups {
 public:
  // groups: null for a single process. Collective over the world when the
  // device is a GPU (every group's NCCL communicator is created together).
  DeviceGroups(parallel::ProcessGroups* groups, Device device);

  // Null when the group has one rank.
  parallel::Communicator* tp() const { return tp_; }
  parallel::Communicator* dp() const { return dp_; }
  parallel::Communicator* pp() const { return pp_; }
  DeviceCommKind kind(parallel::GroupKind group) const;

  // Bytes this rank's device communicators have sent (zero for MPI groups:
  // those bytes are in the MPI group's own counters already).
  uint64_t extra_bytes_sent(parallel::GroupKind group) const;


 private:
  parallel::Communicator* pick(parallel::GroupKind group);

  parallel::ProcessGroups* groups_ = nullptr;
  Device device_;
  std::array<std::unique_ptr<parallel::Communicator>, 3> nccl_;  // by GroupKind (tp, dp, pp); null unless NCCL
  parallel::Communicator* tp_ = nullptr;
  parallel::Communicator* dp_ = nullptr;
  parallel::Communicator* pp_ = nullptr;
};

}  // namespace rwkv::trainer
