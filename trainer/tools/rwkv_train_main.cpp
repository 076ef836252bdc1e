// rwkv-train: train an RWKV-4 model from a YAML config.
//
//   rwkv-train --config configs/tiny.yaml [--set train.steps=100 ...] [--peak-gflops N]
//   mpirun -np 4 rwkv-train --config ... --set parallel.dp=2 --set parallel.tp=2
//
// Under mpirun (or with a multi-rank layout) MPI is initialised and the ranks
// form the dp x tp x pp process groups; an error on every rank is printed
// once, an error on some ranks ends the whole job (parallel/mpi_runtime.h).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_groups.h"
#include "trainer/config.h"
#include "trainer/dry_run.h"
#include "trainer/train_loop.h"

namespace {

const char* kUsage =
    "usage: rwkv-train --config FILE [--set section.key=value]... [--resume WHAT] [--peak-gflops N] [--log-level LEVEL]\n"
    "\n"
    "  --config FILE       training config (YAML; every key is documented in configs/README.md)\n"
    "  --set K=V           override one key, e.g. --set train.steps=100 (repeatable)\n"
    "  --resume WHAT       latest (the newest committed checkpoint, if any), never, or a checkpoint directory\n"
    "                      (same as --set checkpoint.resume=...; latest is the config value auto)\n"
    "  --peak-gflops N     the machine's matmul peak for MFU (default: train.peak_gflops, else measured)\n"
    "  --log-level LEVEL   debug, info, warn or error (default info)\n"
    "  --dry-run           build the model partitioned across parallel.dp/tp/pp without allocating it (one process\n"
    "                      simulates every rank): per-rank parameters and memory, and the checkpoint manifest the\n"
    "                      layout would write, validated (trainer/dry_run.h)\n"
    "  --dry-run-dir DIR   where --dry-run writes manifest.json (default: checkpoint.dir/dry-run)\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "rwkv-train: error: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  // One hardware queue per GPU for all CUDA streams, unless the user chose:
  // kernels then start in the order the host issued them, the same order on
  // every rank. The dp all-reduce overlapping backward runs on its own NCCL
  // stream beside the tp/pp communicators' streams; NCCL kernels block until
  // their peers join, so if a GPU started one communicator's kernel ahead of
  // another's that was issued first, two ranks could wait on each other.
  // (Megatron-LM asks for the same setting for its overlapped communication.)
  // Read by CUDA when it creates the context, so set before any CUDA call.
  setenv("CUDA_DEVICE_MAX_CONNECTIONS", "1", /*overwrite=*/0);
  std::string config_path;
  std::vector<std::string> overrides;
  rwkv::trainer::TrainOptions options;
  bool dry = false;
  std::string dry_dir;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) usage_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (arg == "--config") {
        config_path = value();
      } else if (arg == "--set") {
        overrides.push_back(value());
      } else if (arg == "--resume") {
        const std::string v = value();
        overrides.push_back("checkpoint.resume=" + (v == "latest" ? std::string("auto") : v));
      } else if (arg == "--peak-gflops") {
        const std::string v = value();
        char* end = nullptr;
        options.peak_gflops = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || options.peak_gflops <= 0) usage_error("--peak-gflops expects a positive number, got '" + v + "'");
      } else if (arg == "--dry-run") {
        dry = true;
      } else if (arg == "--dry-run-dir") {
        dry_dir = value();
      } else if (arg == "--log-level") {
        rwkv::set_log_level(rwkv::parse_log_level(value()));
      } else {
        usage_error("unknown argument '" + arg + "'");
      }
    }
    if (config_path.empty()) usage_error("--config is required");
    options.config_path = config_path;
    const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
    if (dry || !dry_dir.empty()) {
      if (!dry) usage_error("--dry-run-dir needs --dry-run");
      if (under_mpirun) usage_error("--dry-run simulates every rank in one process: run it without mpirun");
      const rwkv::trainer::TrainConfig config = rwkv::trainer::load_config(config_path, overrides);
      const std::string dir = dry_dir.empty() ? config.checkpoint.dir + "/dry-run" : dry_dir;
      std::fputs(rwkv::trainer::format_dry_run(config, rwkv::trainer::dry_run(config, dir)).c_str(), stdout);
      return 0;
    }
    if (!under_mpirun) {
      const rwkv::trainer::TrainConfig config = rwkv::trainer::load_config(config_path, overrides);
      rwkv::log_info("config ", config_path, " (digest ", rwkv::trainer::config_digest_hex(config), ")");
      rwkv::trainer::run_training(config, options);
      return 0;
    }
    rwkv::parallel::MpiRuntime mpi(&argc, &argv);
    return rwkv::parallel::run_ranks([&] {
      const rwkv::trainer::TrainConfig config = rwkv::trainer::load_config(config_path, overrides);
      const rwkv::trainer::ParallelConfig& pc = config.parallel;
      rwkv::parallel::ProcessGroups groups(static_cast<int>(pc.dp), static_cast<int>(pc.tp), static_cast<int>(pc.pp));
      if (mpi.rank() == 0) rwkv::log_info("config ", config_path, " (digest ", rwkv::trainer::config_digest_hex(config), ")");
      rwkv::trainer::run_training(config, options, &groups);
      return 0;
    });
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-train: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-train: internal error: %s\n", e.what());
    return 3;
  }
}
