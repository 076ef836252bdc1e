// A stand-in for rwkv-train in the launch tests: it talks to the controller
// exactly as the trainer will (controller_client.h), writes fake shards when
// told, resumes from the newest committed checkpoint, and can be told to die
// or hang at a step on the first attempt.
//
//   rwkv_fake_trainer --steps 30 --interval 10 --ckpt-dir DIR [--step-ms 20]
//       [--fail-at STEP --fail-rank R] [--hang-at STEP --hang-rank R]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "launch/controller_client.h"
#include "launch/flags.h"
#include "launch_test_util.h"

using namespace rwkv::launch;

namespace {

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (!env_or_empty(n).empty()) return std::stoi(env_or_empty(n));
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  FlagParser flags("rwkv_fake_trainer", "usage: rwkv_fake_trainer --steps N --ckpt-dir DIR [flags]");
  flags.add("steps", "total steps", "30");
  flags.add("interval", "checkpoint interval", "10");
  flags.add("ckpt-dir", "checkpoint directory");
  flags.add("step-ms", "milliseconds per step", "20");
  flags.add("heartbeat-s", "heartbeat period", "0.05");
  flags.add("fail-at", "exit with status 3 at this step (first attempt only)", "-1");
  flags.add("fail-rank", "the rank that fails", "1");
  flags.add("hang-at", "stop heartbeating forever at this step (first attempt only)", "-1");
  flags.add("hang-rank", "the rank that hangs", "1");
  flags.add("digest", "config digest", "00000000000000aa");
  flags.add("print-env", "print NAME=value of this environment variable at start (tests of rwkv-launch --env)");
  int rank = 0;
  try {
    flags.parse(argc, argv);
    rank = env_int({"RWKV_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}, 0);
    const int world = env_int({"RWKV_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1);
    const bool first_attempt = env_int({"RWKV_ATTEMPT"}, 1) == 1;
    rwkv::set_log_rank(rank);
    const int64_t steps = flags.get_int("steps");
    const std::string dir = flags.get("ckpt-dir");
    const std::vector<int64_t> committed = testing::committed_steps(dir);
    const int64_t start = committed.empty() ? 0 : committed.back();
    std::printf("rank %d: starting at step %lld (attempt %d)\n", rank, static_cast<long long>(start),
                env_int({"RWKV_ATTEMPT"}, 1));
    if (flags.given("print-env")) {
      const std::string name = flags.get("print-env");
      std::printf("rank %d: %s=%s\n", rank, name.c_str(), env_or_empty(name.c_str()).c_str());
    }
    std::fflush(stdout);

    ClientOptions options = client_options_from_env(rank, world);
    options.heartbeat_s = flags.get_double("heartbeat-s");
    ControllerClient client(options);
    RankInfo info;
    info.config_digest = flags.get("digest");
    info.total_steps = steps;
    info.start_step = start;
    info.checkpoint_dir = dir;
    info.checkpoint_interval = flags.get_int("interval");
    ControllerCommand cmd = client.register_rank(info);
    for (int64_t step = start + 1; step <= steps; ++step) {
      std::this_thread::sleep_for(std::chrono::milliseconds(flags.get_int("step-ms")));
      if (first_attempt && step == flags.get_int("fail-at") && rank == flags.get_int("fail-rank")) {
        // Real ranks move in lockstep (collectives), so every checkpoint
        // before the failure got committed; these independent processes
        // wait for it, or a slow machine would test something else.
        const int64_t interval = flags.get_int("interval");
        const int64_t before = interval > 0 ? (step - 1) / interval * interval : 0;
        testing::wait_until(
            [&] {
              const std::vector<int64_t> c = testing::committed_steps(dir);
              return before == 0 || (!c.empty() && c.back() >= before);
            },
            30);
        std::printf("rank %d: dying at step %lld\n", rank, static_cast<long long>(step));
        std::fflush(stdout);
        std::_Exit(3);  // like a crash: no Finish
      }
      if (first_attempt && step == flags.get_int("hang-at") && rank == flags.get_int("hang-rank")) {
        std::printf("rank %d: hanging at step %lld\n", rank, static_cast<long long>(step));
        std::fflush(stdout);
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      const double loss = 5.0 / (1.0 + 0.1 * static_cast<double>(step));
      std::map<std::string, double> metrics;
      if (rank == 0) metrics = {{"loss", loss}, {"lr", 1e-3}, {"grad_norm", 0.5}, {"tokens_per_s", 12345.0}};
      // The last step forces an RPC so the final checkpoint's command arrives in time.
      cmd = client.heartbeat(step, metrics, step == steps);
      if (cmd.stop_now()) {
        std::printf("rank %d: told to stop at step %lld: %s\n", rank, static_cast<long long>(step), cmd.reason.c_str());
        client.finish(Outcome::Stopped, step, cmd.reason);
        return 0;
      }
      if (cmd.checkpoint_at(step)) {
        const std::string state = client.ack_checkpoint(step, testing::write_fake_shard(dir, step, rank, world));
        std::printf("rank %d: checkpoint %lld acked (%s)\n", rank, static_cast<long long>(step), state.c_str());
        std::fflush(stdout);
        if (cmd.stop_after_checkpoint()) {
          client.finish(Outcome::Stopped, step, "graceful stop");
          return 0;
        }
      }
    }
    client.finish(Outcome::Completed, steps);
    std::printf("rank %d: completed\n", rank);
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv_fake_trainer rank %d: error: %s\n", rank, e.what());
    return 1;
  }
}
