// A small mpirun program for the tests that look at a whole job from the
// outside (exit code, what is printed, how long it takes):
//
//   rwkv_parallel_probe DP TP PP                  build the process groups, barrier, "layout ok"
//   rwkv_parallel_probe DP TP PP --fail-alone R   rank R throws while the others wait in a barrier
//   rwkv_parallel_probe DP TP PP --digest         a fixed data-parallel workload; rank 0 prints
//                                                 "digest=<hex>" of every rank's parameters
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "parallel/data_parallel.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_groups.h"
#include "parallel/zero_optimizer.h"

namespace {

using namespace rwkv;
using namespace rwkv::parallel;

uint64_t fnv(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Values that make addition order visible, a pure function of (rank, i).
float value(int rank, int64_t i) {
  const uint64_t h = fnv(&i, sizeof i, fnv(&rank, sizeof rank));
  return (static_cast<float>(h % 2000003) / 2000003.0f - 0.5f) * static_cast<float>(1 << (h % 13));
}

// Two data-parallel steps over the dp group: bucketed all-reduce of the
// gradients, then ZeRO-1 on the averaged gradients (reduce-scatter, AdamW on
// the shard, all-gather). Returns a hash of every rank's parameters and gradients.
uint64_t digest_workload(ProcessGroups& groups) {
  ParameterStore params;
  params.add("a", {33, 17}, DType::F32, true, 1.0f);
  params.add("b", {101}, DType::F32, false, 2.0f);
  params.add("c", {7, 7, 7}, DType::F32, true, 1.0f);
  // Large enough that each rank's chunk is summed by several OpenMP threads
  // (mpi_comm.cpp parallelises above 2^16 elements): the digest must not care.
  params.add("d", {600, 500}, DType::F32, true, 1.0f);
  ParameterStore grads = params.zeros_like();
  AdamWSettings settings;
  settings.weight_decay = 0.01f;
  GradAllReducer reducer(grads, groups.dp(), /*bucket_bytes=*/2 << 20);
  ZeroOneSync sync(params, groups.dp(), /*bucket_bytes=*/2 << 20, /*align=*/8);
  ShardedAdamW opt(params, sync.partition(), groups.dp().rank(), settings);
  const int rank = groups.topology().rank();
  for (int step = 0; step < 2; ++step) {
    for (NamedTensor& g : grads.entries())
      for (int64_t i = 0; i < g.value.numel(); ++i) g.value.data<float>()[i] = value(rank + 100 * step, i);
    reducer.all_reduce_mean(grads);
    ParameterStore local = grads.zeros_like();
    for (size_t t = 0; t < grads.entries().size(); ++t) local.entries()[t].value.copy_from(grads.entries()[t].value);
    sync.reduce_mean(local);
    opt.step(params, sync.grad_shard(), 1e-3, groups.dp());
    sync.all_gather_params(opt.master_shard(), params);
  }
  uint64_t h = 1469598103934665603ull;
  for (const NamedTensor& p : params.entries()) h = fnv(p.value.raw_data(), p.value.nbytes(), h);
  for (const NamedTensor& g : grads.entries()) h = fnv(g.value.raw_data(), g.value.nbytes(), h);
  // Every rank's hash, gathered: the digest also says that replicas agree.
  Tensor mine = Tensor::from_vector<int64_t>({static_cast<int64_t>(h)}, {1});
  Tensor all = Tensor::empty({groups.world().size()}, DType::I64);
  groups.world().all_gather(mine, all);
  return fnv(all.raw_data(), all.nbytes());
}

int probe(int argc, char** argv) {
  RWKV_CHECK(argc >= 4, "usage: rwkv_parallel_probe DP TP PP [--fail-alone RANK | --digest]");
  const int dp = std::atoi(argv[1]), tp = std::atoi(argv[2]), pp = std::atoi(argv[3]);
  int fail_alone = -1;
  bool digest = false;
  for (int i = 4; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fail-alone") == 0 && i + 1 < argc)
      fail_alone = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--digest") == 0)
      digest = true;
    else
      RWKV_FAIL("rwkv_parallel_probe: unknown argument '", argv[i], "'");
  }
  ProcessGroups groups(dp, tp, pp);
  const int rank = groups.topology().rank();
  if (rank == fail_alone) RWKV_FAIL("probe: rank ", rank, " fails alone");
  if (digest) {
    const uint64_t d = digest_workload(groups);
    if (rank == 0) std::printf("digest=%016llx\n", static_cast<unsigned long long>(d));
  }
  groups.world().barrier();  // the others wait here for a rank that failed alone
  if (rank == 0) std::printf("layout ok: %s\n", groups.topology().layout_str().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MpiRuntime mpi(&argc, &argv);
  return run_ranks([&] { return probe(argc, argv); });
}
