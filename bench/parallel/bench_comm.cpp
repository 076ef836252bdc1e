// Data-parallel communication benchmark: the bytes each rank sends per
// optimizer step (counted by the communicator, next to the analytic formula)
// and the time per step, for plain DP (bucketed all-reduce) and ZeRO-1
// (reduce-scatter + all-gather), each with the f32 and the bf16 gradient
// wire (parallel.grad_reduce_dtype), on the gradients of an RWKV-4 shape.
//
//   mpirun -np 4 rwkv-bench-parallel [--n-layer 4] [--n-embd 256] [--vocab 4096]
//                                    [--bucket-mb 25] [--steps 5]
//
// All ranks form one dp group (dp = world). Rank 0 prints one line per
// method and a JSON summary. CPU tensors over MPI: on one machine this
// measures memory bandwidth and MPI's shared-memory transport, not a network.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/timer.h"
#include "parallel/comm_volume.h"
#include "parallel/data_parallel.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_groups.h"
#include "parallel/zero_optimizer.h"
#include "trainer/rwkv4_model.h"

namespace {

using namespace rwkv;
using namespace rwkv::parallel;

struct Options {
  int64_t n_layer = 4, n_embd = 256, vocab = 4096;
  double bucket_mb = 25.0;
  int steps = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) {
      RWKV_CHECK(i + 1 < argc, flag, " needs a value");
      return argv[++i];
    };
    if (std::strcmp(argv[i], "--n-layer") == 0)
      o.n_layer = std::atoll(next("--n-layer"));
    else if (std::strcmp(argv[i], "--n-embd") == 0)
      o.n_embd = std::atoll(next("--n-embd"));
    else if (std::strcmp(argv[i], "--vocab") == 0)
      o.vocab = std::atoll(next("--vocab"));
    else if (std::strcmp(argv[i], "--bucket-mb") == 0)
      o.bucket_mb = std::atof(next("--bucket-mb"));
    else if (std::strcmp(argv[i], "--steps") == 0)
      o.steps = std::atoi(next("--steps"));
    else
      RWKV_FAIL("rwkv-bench-parallel: unknown argument '", argv[i],
                "'\n  ---> HINT: --n-layer N --n-embd C "
                "--vocab V --bucket-mb MB --steps S");
  }
  RWKV_CHECK(o.n_layer > 0 && o.n_embd > 0 && o.vocab > 0 && o.bucket_mb > 0 && o.steps > 0,
             "rwkv-bench-parallel: every option must be positive");
  return o;
}

void fill(ParameterStore& s, int rank) {
  uint32_t x = 12345u + 977u * static_cast<uint32_t>(rank);
  for (NamedTensor& e : s.entries()) {
    float* p = e.value.data<float>();
    for (int64_t i = 0; i < e.value.numel(); ++i) {
      x = x * 1664525u + 1013904223u;
      p[i] = static_cast<float>(x >> 8) / static_cast<float>(1u << 24) - 0.5f;
    }
  }
}

struct Result {
  const char* method;
  uint64_t measured, formula;  // bytes sent by rank 0 per step
  double ms;                   // best step time, slowest rank
};

// Best of `steps` timings; each timing is the max over ranks (a step ends when
// the slowest rank is done).
template <typename F>
double best_step_ms(MpiCommunicator& world, int steps, F&& step) {
  double best = 1e30;
  for (int s = 0; s < steps; ++s) {
    world.barrier();
    Timer t;
    step();
    double ms = t.millis();
    Tensor v = Tensor::from_vector<double>({ms}, {1});
    Tensor all = Tensor::empty({world.size()}, DType::F64);
    world.all_gather(v, all);
    const auto times = all.to_vector<double>();
    best = std::min(best, *std::max_element(times.begin(), times.end()));
  }
  return best;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  ProcessGroups groups(world_size, 1, 1);
  MpiCommunicator& dp = groups.dp();
  const int rank = groups.topology().rank();
  const Rwkv4Shape shape{o.n_layer, o.n_embd, o.vocab, 4 * o.n_embd};
  ParameterStore params = declare_rwkv4_parameters(shape, DType::F32);
  ParameterStore grads = params.zeros_like();
  const int64_t N = params.numel();
  const auto bucket_bytes = static_cast<int64_t>(o.bucket_mb * 1024 * 1024);

  std::vector<Result> results;
  for (const bool bf16_wire : {false, true}) {
    const std::optional<DType> wire = bf16_wire ? std::optional<DType>(DType::BF16) : std::nullopt;
    {  // plain DP: bucketed all-reduce of the gradients
      GradAllReducer reducer(grads, dp, bucket_bytes, wire);
      fill(grads, rank);
      reducer.all_reduce_mean(grads);  // warm-up (page faults, MPI connections)
      dp.reset_stats();
      double ms = best_step_ms(groups.world(), o.steps, [&] { reducer.all_reduce_mean(grads); });
      results.push_back({bf16_wire ? "dp_all_reduce_bf16" : "dp_all_reduce",
                         dp.stats().sent(CommOp::AllReduce) / static_cast<uint64_t>(o.steps),
                         reducer.bytes_sent_per_call(), ms});
    }
    {  // ZeRO-1: reduce-scatter, AdamW on the shard, all-gather
      ZeroOneSync sync(params, dp, bucket_bytes, kZeroAlign, wire);
      ShardedAdamW opt(params, sync.partition(), dp.rank(), AdamWSettings{});
      auto step = [&] {
        sync.reduce_mean(grads);
        opt.step(params, sync.grad_shard(), 1e-4, dp);
        sync.all_gather_params(opt.master_shard(), params);
      };
      step();
      dp.reset_stats();
      double ms = best_step_ms(groups.world(), o.steps, step);
      const uint64_t per_step = (dp.stats().sent(CommOp::ReduceScatter) + dp.stats().sent(CommOp::AllGather) +
                                 dp.stats().sent(CommOp::AllReduce)) /
                                static_cast<uint64_t>(o.steps);
      results.push_back({bf16_wire ? "zero1_rs_ag_bf16" : "zero1_rs_ag", per_step,
                         sync.reduce_scatter_bytes_per_call() + sync.all_gather_bytes_per_call() +
                             all_reduce_bytes_sent(1, 8, dp.size(), dp.rank()),  // + the grad norm's one f64
                         ms});
    }
  }
  if (rank == 0) {
    std::printf(
        "rwkv-bench-parallel: dp=%d, RWKV-4 L%lld C%lld V%lld = %lld f32 parameters (%.1f MiB), "
        "buckets %.1f MiB\n",
        world_size, static_cast<long long>(o.n_layer), static_cast<long long>(o.n_embd),
        static_cast<long long>(o.vocab), static_cast<long long>(N), static_cast<double>(N) * 4 / 1048576.0,
        o.bucket_mb);
    std::printf(
        "  formulas per rank and step: all-reduce 2(n-1)/n N e (per bucket); ZeRO-1 (n-1) S e + (n-1) S e "
        "(S = shard) + the gradient norm's all-reduce of one f64; *_bf16: gradients on a bf16 wire (e = 2 for them)\n");
    for (const Result& r : results)
      std::printf("  %-18s bytes/step/rank %12llu (formula %12llu, %s)  %9.2f ms/step  %7.2f GB/s sent\n", r.method,
                  static_cast<unsigned long long>(r.measured), static_cast<unsigned long long>(r.formula),
                  r.measured == r.formula ? "equal" : "DIFFERENT", r.ms,
                  static_cast<double>(r.measured) / (r.ms * 1e6));
    std::printf("{\"dp\": %d, \"params\": %lld", world_size, static_cast<long long>(N));
    for (const Result& r : results)
      std::printf(", \"%s\": {\"bytes_per_step\": %llu, \"formula\": %llu, \"ms\": %.3f}", r.method,
                  static_cast<unsigned long long>(r.measured), static_cast<unsigned long long>(r.formula), r.ms);
    std::printf("}\n");
  }
  return std::all_of(results.begin(), results.end(), [](const Result& r) { return r.measured == r.formula; }) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MpiRuntime mpi(&argc, &argv);
  return run_ranks([&] { return run(argc, argv); });
}
