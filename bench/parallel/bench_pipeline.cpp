// A whole training step under a 3-D layout: the bytes each rank sends per
// optimizer step, per group (counted, next to trainer/step_comm_volume.h's
// formula), and the measured pipeline bubble next to (p - 1) / (m + p - 1).
//
//   mpirun -np N rwkv-bench-pipeline [--layout DPxTPxPP] [--micro 1,2,4,8] [--steps 3]
//                                    [--n-layer 8] [--n-embd 256] [--ctx 64] [--batch 2]
//
// The layout defaults to 1x1xN (a pure pipeline). For each micro-batch count m
// it trains a few 1F1B steps (and GPipe at the largest m) of a byte-vocabulary
// RWKV-4 with rwkv-train's loop on a synthetic corpus. A stage's bubble is
// 1 - (its forward/backward compute time) / (its time in the schedule): the
// share it waits on neighbours or transfers. The job's bubble is the mean over
// ranks. One CPU core per rank makes the stages equal; oversubscribed ranks
// share cores and the measured bubble then says more about the scheduler.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/binidx_writer.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_groups.h"
#include "trainer/train_loop.h"

namespace {

using namespace rwkv;
namespace fs = std::filesystem;

struct Options {
  int dp = 1, tp = 1, pp = 0;  // pp 0: the world size
  std::vector<int> micro = {1, 2, 4, 8};
  int steps = 3;
  int64_t n_layer = 8, n_embd = 256, ctx = 64, batch = 2;
};

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    RWKV_CHECK(i + 1 < argc, "rwkv-bench-pipeline: ", flag, " needs a value");
    const std::string v = argv[++i];
    if (flag == "--layout") {
      RWKV_CHECK(std::sscanf(v.c_str(), "%dx%dx%d", &o.dp, &o.tp, &o.pp) == 3, "rwkv-bench-pipeline: --layout expects DPxTPxPP, got '", v, "'");
    } else if (flag == "--micro") {
      o.micro = parse_list(v);
    } else if (flag == "--steps") {
      o.steps = std::atoi(v.c_str());
    } else if (flag == "--n-layer") {
      o.n_layer = std::atoll(v.c_str());
    } else if (flag == "--n-embd") {
      o.n_embd = std::atoll(v.c_str());
    } else if (flag == "--ctx") {
      o.ctx = std::atoll(v.c_str());
    } else if (flag == "--batch") {
      o.batch = std::atoll(v.c_str());
    } else {
      RWKV_FAIL("rwkv-bench-pipeline: unknown flag '", flag,
                "'\n  ---> HINT: --layout DPxTPxPP --micro 1,2,4 --steps S --n-layer L --n-embd C --ctx T --batch B");
    }
  }
  return o;
}

std::string write_corpus(const fs::path& dir, int rank) {
  const std::string prefix = (dir / "train").string();
  if (rank == 0) {
    fs::create_directories(dir);
    data::BinIdxWriter writer(prefix, data::TokenDType::U16);
    std::vector<int32_t> doc;
    for (int i = 0; i < 200000; ++i) doc.push_back(1 + (i * 7 + (i / 13) * 3) % 250);
    writer.add_document(doc);
    writer.finish();
    writer.commit();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return prefix;
}

trainer::TrainConfig config_for(const Options& o, const std::string& prefix, int micro, const std::string& schedule,
                                const fs::path& dir) {
  std::ostringstream yaml;
  yaml << "model: {n_layer: " << o.n_layer << ", n_embd: " << o.n_embd << ", vocab_size: 257, ctx_len: " << o.ctx << "}\n"
       << "data: {train: [" << prefix << "], tokenizer: bytes}\n"
       << "train: {micro_batch: " << o.batch << ", grad_accum: " << micro << ", steps: " << o.steps
       << ", lr_init: 1e-3, lr_final: 1e-3, warmup_steps: 0, log_interval: 1000, peak_gflops: 1, threads: 1}\n"
       << "parallel: {dp: " << o.dp << ", tp: " << o.tp << ", pp: " << o.pp << ", schedule: " << schedule << "}\n"
       << "checkpoint: {dir: " << (dir / "ckpt").string() << ", resume: never, interval: 0}\n";
  return trainer::load_config_text(yaml.str(), "rwkv-bench-pipeline");
}

// The mean of x over the world.
double mean_over_world(double x) {
  double sum = 0;
  int n = 1;
  MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return sum / n;
}

}  // namespace

int main(int argc, char** argv) {
  parallel::MpiRuntime mpi(&argc, &argv);
  return parallel::run_ranks([&] {
    Options o = parse(argc, argv);
    int world = 1, rank = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (o.pp == 0) o.pp = world;
    RWKV_CHECK(o.dp * o.tp * o.pp == world, "rwkv-bench-pipeline: layout ", o.dp, "x", o.tp, "x", o.pp, " needs ",
               o.dp * o.tp * o.pp, " ranks, mpirun started ", world);
    set_log_level(LogLevel::Warn);  // the training runs' lines would drown the table
    const fs::path dir = fs::temp_directory_path() / ("rwkv_bench_pipeline_" + std::to_string(::getppid()));
    const std::string prefix = write_corpus(dir, rank);
    parallel::ProcessGroups groups(o.dp, o.tp, o.pp);
    const int p = o.pp;
    if (rank == 0)
      std::printf("layout dp=%d x tp=%d x pp=%d; RWKV-4 L%lld C%lld, micro-batch %lld x %lld tokens, %d steps each\n",
                  o.dp, o.tp, o.pp, (long long)o.n_layer, (long long)o.n_embd, (long long)o.batch, (long long)o.ctx, o.steps);
    std::string json = "{\"bench\":\"pipeline\",\"dp\":" + std::to_string(o.dp) + ",\"tp\":" + std::to_string(o.tp) +
                       ",\"pp\":" + std::to_string(p) + ",\"runs\":[";
    int runs = 0;
    for (size_t i = 0; i < o.micro.size(); ++i) {
      const int m = o.micro[i];
      for (const char* schedule : {"1f1b", "gpipe"}) {
        if (std::string(schedule) == "gpipe" && i + 1 != o.micro.size()) continue;  // GPipe at the largest m only
        const trainer::TrainConfig config = config_for(o, prefix, m, schedule, dir);
        const trainer::RankCoordinates coords{groups.tp().rank(), groups.dp().rank(), groups.pp().rank(), groups.mp().rank()};
        trainer::StepCommBytes formula;
        trainer::TrainOptions options;  // the formula needs this rank's parameter shapes: known at the end
        options.on_finish = [&](const ParameterStore& params) { formula = trainer::expected_step_bytes(config, coords, params); };
        const trainer::TrainSummary s = trainer::run_training(config, options, &groups);
        const double bubble = mean_over_world(s.pipeline_s > 0 ? 1.0 - s.pipeline_compute_s / s.pipeline_s : 0.0);
        const double theory = static_cast<double>(p - 1) / static_cast<double>(m + p - 1);
        const double bytes = mean_over_world(static_cast<double>(s.last_step_sent.total()));
        const double formula_bytes = mean_over_world(static_cast<double>(formula.total()));
        if (rank == 0) {
          std::printf("  %-5s m=%-3d bubble measured %5.1f%%  (p-1)/(m+p-1) %5.1f%%   bytes/rank/step %.0f counted, %.0f formula (rank 0: %s)\n",
                      schedule, m, 100.0 * bubble, 100.0 * theory, bytes, formula_bytes, s.last_step_sent.str().c_str());
          json += std::string(runs++ ? "," : "") + "{\"schedule\":\"" + schedule + "\",\"m\":" + std::to_string(m) +
                  ",\"bubble\":" + std::to_string(bubble) + ",\"theory\":" + std::to_string(theory) +
                  ",\"bytes_per_rank_step\":" + std::to_string(bytes) + ",\"formula_bytes\":" + std::to_string(formula_bytes) + "}";
        }
      }
    }
    if (rank == 0) std::printf("%s]}\n", json.c_str());
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) fs::remove_all(dir);
    return 0;
  });
}
