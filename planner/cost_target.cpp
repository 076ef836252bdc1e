#include "planner/cost_target.h"

#include "core/error.h"

namespace rwkv::planner {

CostTarget target_preset(const std::string& name) {
  CostTarget t;
  t.name = name;
  if (name == "gpu-bf16") {
    // Efficiencies: large bf16 GEMMs reach ~80% of the A100/H100 dense peak;
    // nccl-tests all-reduce bus bandwidth is ~40% of the quoted NVLink figure
    // (a bidirectional total) and ~90% of an InfiniBand link's. These are
    // assumptions, not measurements: override them with --gemm-eff etc.
    t.runtime_overhead = 1.5 * (1 << 30);  // CUDA context, cuBLAS workspaces, NCCL buffers
    // rwkv-train's train.precision: bf16 (docs/mixed_precision.md): f32
    // gradients (accumulated by cuBLAS in f32, reduced over dp in f32) and,
    // with ZeRO-1, the bf16 weights gathered (ZeroOneSync::all_gather_params),
    // but for the buckets holding an f32-only vector.
    t.grad_bytes = 4;
    t.gather_bytes = 2;
    t.mixed_gather_bytes = 4;
    t.gather_overlap = true;
    return t;
  }
  if (name == "cpu-fp32") {
    t.param_bytes = 4;
    t.grad_bytes = 4;
    t.master_bytes = 0;
    t.act_bytes = 4;
    // The process itself: ~180 MiB resident in a build that links cuBLAS (its
    // libraries are mapped and relocated before main), ~20 MiB in a CPU-only
    // build; rwkv-bench-planner and the tests measure it with a near-empty model.
    t.runtime_overhead = 180.0 * (1 << 20);
    t.memory_usable = 0.9;
    t.init_whole_model = true;
    t.gemm_efficiency = 1.0;   // the cluster's rate is the measured sgemm peak
    t.mem_efficiency = 1.0;    // and the measured bandwidth
    t.intra_efficiency = 1.0;  // the measured MPI all-reduce bandwidth
    t.inter_efficiency = 1.0;
    t.latency_intra = 5e-6;
    t.latency_inter = 20e-6;
    t.kernel_overhead = 0.0;
    return t;
  }
  RWKV_FAIL("--target: unknown cost target '", name, "'\n  ---> HINT: use gpu-bf16 (bf16 mixed precision on GPUs) or "
            "cpu-fp32 (rwkv-train on CPUs)");
}

}  // namespace rwkv::planner
