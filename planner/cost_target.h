// How a trainer uses the machine: bytes per parameter and per activation,
// the efficiencies that turn peak rates into achieved ones, and the habits of
// rwkv-train that show in its measured memory. Two presets:
//
//   gpu-bf16  rwkv-train with train.precision: bf16 on GPUs
//             (docs/mixed_precision.md): bf16 weights and activations for
//             forward/backward, fp32 gradients, fp32 master weights and Adam
//             moments (2 + 4 + 4 + 8 = 18 bytes a parameter); dp reduces the
//             fp32 gradients; ZeRO-1 shards the masters with the moments and
//             gathers the bf16 weights (the f32 masters for the few buckets
//             that hold a LayerNorm or time_* vector), the bf16 ones
//             overlapped with the next forward. DeepSpeed's bf16 keeps
//             bf16 gradients (16 bytes): --grad-bytes 2 models it;
//             --grad-reduce bf16 models rwkv-train's bf16 wire over its
//             f32 gradients (parallel.grad_reduce_dtype: bf16).
//   cpu-fp32  rwkv-train on the CPU as it is: fp32 parameters, gradients and
//             moments (4 + 4 + 8 = 16 bytes), no master copy, fp32
//             activations; the efficiencies are 1 because the cluster's rates
//             are measured ones (rwkv-bench-planner).
#pragma once

#include <cstdint>
#include <string>

namespace rwkv::planner {

struct CostTarget {
  std::string name;
  // The bytes of a gradient element on the dp wire.
  double wire_grad_bytes() const { return reduce_bytes > 0 ? reduce_bytes : grad_bytes; }
  // --- memory: bytes per parameter and per activation element
  double param_bytes = 2;     // the weights forward and backward read
  double grad_bytes = 2;      // the gradient buffer (accumulated over micro-batches), also what dp reduces
  // A gradient element on the dp wire when it differs from grad_bytes
  // (0: grad_bytes): rwkv-train's parallel.grad_reduce_dtype: bf16 rounds
  // its f32 gradients into a ring of 4 bf16 buckets (parallel/bucketed_reduction.h).
  double reduce_bytes = 0;
  double gather_bytes = 0;    // ZeRO-1's all-gather of updated parameters, per parameter (0: param_bytes)
  // ZeRO-1's all-gather of a bucket that holds a tensor without a bf16 copy
  // (rwkv-train gathers those buckets' f32 masters: each block's two runs of
  // LayerNorm / time_* vectors and ln_out leave one bucket each); 0: gather_bytes.
  double mixed_gather_bytes = 0;
  // ZeRO-1's gather of the bf16-only buckets runs into the next step's
  // forward (rwkv-train on GPUs: ZeroOneSync::start_all_gather_params), each
  // block waiting for its own buckets; the f32 buckets complete first.
  bool gather_overlap = false;
  double master_bytes = 4;    // fp32 master weights beside low-precision ones (0: the weights are fp32)
  double adam_bytes = 8;      // Adam m and v, fp32
  double act_bytes = 2;       // one activation element
  int64_t bucket_bytes = int64_t{25} << 20;  // data-parallel bucket (parallel/data_parallel.h)
  double runtime_overhead = 0;  // per rank: process and libraries, MPI, CUDA context, NCCL buffers
  double memory_usable = 0.9;   // share of a device's memory a plan may fill (allocator fragmentation, OS)
  // --- rwkv-train's habits that its measured peak shows
  // rwkv-train's start-up in host memory (init_rwkv4_reference): the head's
  // orthogonal init runs in double (16 V C bytes), and a partitioned rank
  // makes one global tensor at a time whole to cut its slice (4 V C more).
  bool init_whole_model = false;
  // --- time
  double gemm_efficiency = 0.8;   // achieved / peak rate on the model's GEMM shapes
  double mem_efficiency = 0.8;    // achieved / peak memory bandwidth of elementwise ops and AdamW
  double intra_efficiency = 0.4;  // achieved all-reduce bus bandwidth / the quoted intra-node link speed
  double inter_efficiency = 0.9;  // the same between nodes
  double latency_intra = 10e-6;   // seconds per collective step or message within a node
  double latency_inter = 20e-6;   // between nodes
  double kernel_overhead = 5e-6;  // seconds per op launched (CUDA launch; ~0 on a CPU)
  double dp_overlap = 0.0;        // share of the dp gradient reduction hidden behind backward (rwkv-train
                                  // overlaps plain-dp all-reduces and ZeRO-1 reduce-scatters; ZeRO-1's
                                  // parameter all-gather is gather_overlap's; the share is not measured
                                  // yet: 0 = none assumed)
};

CostTarget target_preset(const std::string& name);  // "gpu-bf16" or "cpu-fp32"

}  // namespace rwkv::planner
