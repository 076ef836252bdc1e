#include "planner/cluster.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace rwkv::planner {

int64_t Cluster::ranks_per_node(int64_t world) const { return std::max<int64_t>(1, std::min(world, gpus_per_node)); }

double Cluster::rank_flops(int64_t world) const {
  return shared_node ? peak_flops / static_cast<double>(ranks_per_node(world)) : peak_flops;
}
double Cluster::rank_mem_bw(int64_t world) const {
  return shared_node ? mem_bw / static_cast<double>(ranks_per_node(world)) : mem_bw;
}
double Cluster::rank_memory(int64_t world) const {
  return shared_node ? memory_bytes / static_cast<double>(ranks_per_node(world)) : memory_bytes;
}

void Cluster::validate() const {
  const char* hint = "\n  ---> HINT: e.g. --cluster a100-80g --nodes 8, or give --gpus-per-node 8 --gpu-memory 80GiB "
                     "--tflops 312 --intra-bw 600GB/s --inter-bw 200Gb/s";
  RWKV_CHECK(nodes >= 1, "--nodes must be at least 1, got ", nodes, hint);
  RWKV_CHECK(gpus_per_node >= 1, "--gpus-per-node must be at least 1, got ", gpus_per_node, hint);
  RWKV_CHECK(std::isfinite(memory_bytes) && memory_bytes > 0, "--gpu-memory must be positive, got ", memory_bytes / (1 << 30),
             " GiB", hint);
  RWKV_CHECK(std::isfinite(peak_flops) && peak_flops > 0, "--tflops must be positive, got ", peak_flops / 1e12, hint);
  RWKV_CHECK(std::isfinite(mem_bw) && mem_bw > 0, "--mem-bw must be positive, got ", mem_bw / 1e9, " GB/s", hint);
  RWKV_CHECK(std::isfinite(intra_bw) && intra_bw > 0, "--intra-bw must be positive, got ", intra_bw / 1e9, " GB/s", hint);
  RWKV_CHECK(nodes == 1 || (std::isfinite(inter_bw) && inter_bw > 0), "--inter-bw must be positive for ", nodes,
             " nodes, got ", inter_bw / 1e9, " GB/s", hint);
}

std::vector<std::string> cluster_preset_names() { return {"a100-80g", "h100-80g", "cpu"}; }

Cluster cluster_preset(const std::string& name, int64_t nodes) {
  constexpr double GiB = 1024.0 * 1024 * 1024;
  Cluster c;
  c.name = name;
  c.nodes = nodes;
  if (name == "a100-80g") {
    c.gpus_per_node = 8;
    c.memory_bytes = 80 * GiB;
    c.peak_flops = 312e12;
    c.mem_bw = 2039e9;
    c.intra_bw = 600e9;
    c.inter_bw = 200e9 / 8;
  } else if (name == "h100-80g") {
    c.gpus_per_node = 8;
    c.memory_bytes = 80 * GiB;
    c.peak_flops = 989e12;
    c.mem_bw = 3350e9;
    c.intra_bw = 900e9;
    c.inter_bw = 400e9 / 8;
  } else if (name == "cpu") {
    c.gpus_per_node = 2;
    c.memory_bytes = 24 * GiB;
    c.peak_flops = 224e9;
    c.mem_bw = 20e9;
    c.intra_bw = 20e9;
    c.inter_bw = 0;
    c.shared_node = true;
  } else {
    RWKV_FAIL("--cluster: unknown preset '", name, "'\n  ---> HINT: use a100-80g, h100-80g or cpu, or describe the "
              "machines with --gpus-per-node --gpu-memory --tflops --intra-bw --inter-bw");
  }
  return c;
}

}  // namespace rwkv::planner
