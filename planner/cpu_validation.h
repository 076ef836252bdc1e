// Checking the planner against rwkv-train on this machine: write a token
// file and a config for a layout, run rwkv-train (under mpirun when the
// layout has several ranks), and read back what it logs:
//
//   step=3/4 loss=... ms=812.3 tok/s=... mem=...          one line per step (train_loop.h)
//   memory: peak resident per rank: rank 0 612MiB, ...    several ranks
//   done: ... peak memory 640MiB; weights: ...            one rank
//
// rwkv-bench-planner prints predictions next to these measurements; a test
// asserts the memory (deterministic), never the time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "planner/layout.h"
#include "planner/model_spec.h"

namespace rwkv::planner {

struct CpuRunSpec {
  std::string rwkv_train;  // the rwkv-train executable
  std::string mpirun;      // mpirun (Open MPI) for layouts of several ranks
  std::string workdir;     // data, configs and checkpoints go here
  std::string data_prefix; // a binidx prefix (write_validation_dataset)
  ModelSpec model;
  Layout layout;
  int64_t steps = 4;
  double peak_gflops = 1;  // only rwkv-train's logged MFU uses it; stating it skips its GEMM measurement
  // Environment for rwkv-train, e.g. "OMP_WAIT_POLICY=passive" (forwarded to every rank).
  std::vector<std::string> env;
  double bucket_mib = 0;   // parallel.bucket_mib when > 0 (else rwkv-train's default)
};

struct CpuRun {
  std::vector<double> step_ms;     // every logged step, in order
  std::vector<double> peak_bytes;  // peak resident memory of each rank
  std::string log;                 // everything rwkv-train printed
  // The median step time without the first step (allocation, page faults).
  double steady_step_ms() const;
};

// A binidx shard of `tokens` pseudo-random token ids below `vocab` (a
// deterministic stream); returns its prefix.
std::string write_validation_dataset(const std::string& dir, int64_t vocab, int64_t tokens);

// The YAML config of a run (every key rwkv-train needs, checkpoints only at
// the end); run_rwkv_train writes it to WORKDIR/config_<tag>.yaml and the
// checkpoints go to WORKDIR/ckpt_<tag>, tag = "dp2_tp2_pp2" (+ "_zero").
std::string validation_config(const CpuRunSpec& spec);

// Runs rwkv-train and parses its log; throws with the command and its output
// when it fails or logs no step.
CpuRun run_rwkv_train(const CpuRunSpec& spec);

}  // namespace rwkv::planner
