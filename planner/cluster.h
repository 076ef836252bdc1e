// The machines a plan runs on: nodes of identical devices (GPUs), their
// memory, dense matrix-multiply rate, memory bandwidth and the links between
// them. Bandwidths are per device and per direction, as the collectives'
// bus-bandwidth formulas use them (parallel/comm_volume.h); inter-node
// bandwidth is per device too (one NIC per GPU, as DGX/HGX nodes have: pass
// the node's NIC bandwidth divided by the GPUs sharing it otherwise).
//
// A CPU machine is described as one node whose "devices" are rank slots
// (shared_node): the ranks on a node split its cores (GEMM rate), memory
// bandwidth and memory evenly, as rwkv-train gives each rank cores/ranks
// threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkv::planner {

struct Cluster {
  std::string name;
  int64_t nodes = 1;
  int64_t gpus_per_node = 1;  // devices per node (CPU: the most ranks a node runs)
  double memory_bytes = 0;    // per device (shared_node: the node's)
  double peak_flops = 0;      // dense bf16 FLOP/s per device (shared_node: the node's f32 GEMM rate)
  double mem_bw = 0;          // device memory bandwidth, bytes/s (shared_node: the node's)
  double intra_bw = 0;        // bytes/s per device between devices of one node
  double inter_bw = 0;        // bytes/s per device between nodes
  bool shared_node = false;

  int64_t devices() const { return nodes * gpus_per_node; }
  // Ranks that share a node when `world` ranks fill the nodes in order.
  int64_t ranks_per_node(int64_t world) const;
  // What one rank gets: a device, or its share of a shared node.
  double rank_flops(int64_t world) const;
  double rank_mem_bw(int64_t world) const;
  double rank_memory(int64_t world) const;

  // Throws naming the flag for any impossible value (0 GPUs, negative memory, ...).
  void validate() const;
};

// "a100-80g": 8 x A100-SXM4-80GB per node: 312 TFLOP/s dense bf16, 2039 GB/s HBM2e,
//             NVLink 600 GB/s, 200 Gb/s InfiniBand per GPU (DGX A100).
// "h100-80g": 8 x H100-SXM5-80GB per node: 989 TFLOP/s dense bf16, 3350 GB/s HBM3,
//             NVLink 900 GB/s, 400 Gb/s InfiniBand per GPU (DGX H100).
// "cpu":      this project's development machine (docs/performance.md): one node,
//             2 rank slots, 24 GiB, 224 GFLOP/s f32 GEMM, 20 GB/s memory and
//             MPI shared-memory bandwidth; rwkv-bench-planner measures them.
Cluster cluster_preset(const std::string& name, int64_t nodes = 1);
std::vector<std::string> cluster_preset_names();

}  // namespace rwkv::planner
