// Chaos with the real trainer: rwkv-launch runs rwkv-train on two
// tensor-parallel ranks under mpirun, and each test breaks something mid-run:
//   - kill -9 of a rank: the job restarts by itself from the last committed
//     checkpoint, and every step's loss (full precision, from the
//     controller) and the final checkpoint's shards equal an uninterrupted
//     run's: the CPU trainer resumes bit for bit;
//   - kill -9 of the controller: rwkv-launch starts it again on the same port
//     with the same database, the ranks reconnect without restarting, no
//     committed checkpoint and no metric point is lost;
//   - kill -9 of a rank between writing its checkpoint shard and acking it
//     (the test hook RWKV_TEST_STALL_BEFORE_ACK holds it there): that
//     checkpoint is never committed and the restart resumes from the one
//     before;
//   - SIGSTOP of a rank (hung): the controller fails the job within the
//     heartbeat timeout and rwkv-launch restarts it.
// With RWKV_TEST_DEVICE=cuda (label cuda) the ranks train on a GPU each: the
// checkpoints travel device -> host -> device, and the restarted job must
// still match the uninterrupted one bit for bit (a shorter run: GPUs, or the
// CUDA emulator, take longer per tiny step).
// Lines starting with "[ measured ]" report detection and restart times.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "core/device.h"
#include "launch_test_util.h"
#include "trainer_job.h"

namespace rwkv::launch {
namespace {

namespace fs = std::filesystem;
using testing::TrainerJob;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Running on both ranks, a checkpoint committed and training past it: the
// moment to break something.
bool committed_and_training(const StatusReply& s) {
  return s.state() == "running" && s.ranks_alive() == 2 && s.has_committed() && s.step() > s.last_committed().step();
}

std::string step_dir(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt/step_%08lld", static_cast<long long>(step));
  return name;
}

// The step the restarted ranks resumed from ("resume: step N from ..."), -1 if none.
int64_t resumed_step(const TrainerJob& job) {
  std::smatch m;
  const std::string log = job.read("state/ranks.log");
  return std::regex_search(log, m, std::regex(R"(resume: step (\d+) from)")) ? std::stoll(m[1]) : -1;
}

class Chaos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_mpirun()) GTEST_SKIP() << "mpirun is not installed (openmpi-bin): the chaos jobs need two ranks";
    spec.data_prefix = testing::prepare_chaos_data(dir.path());
    const char* device = std::getenv("RWKV_TEST_DEVICE");
    if (device != nullptr && std::string(device) == "cuda") {
      if (!cuda_available() || cuda_device_count() < 2)
        GTEST_SKIP() << "needs 2 GPUs (one per rank), found " << (cuda_available() ? cuda_device_count() : 0);
      spec.device = "cuda";
      spec.steps = 60;
      spec.interval = 10;
    }
  }

  // Runs the same job without interference in <dir>/reference.
  void run_reference(std::map<int64_t, double>* losses) {
    TrainerJob reference(dir.file("reference"), spec);
    reference.start();
    ASSERT_EQ(reference.wait(240).value_or(-1), 0) << reference.diagnostics();
    *losses = reference.losses();
  }

  // Every step's loss equals the reference's, to the last bit.
  void expect_same_losses(const std::map<int64_t, double>& got, const std::map<int64_t, double>& want) {
    ASSERT_EQ(want.size(), static_cast<size_t>(spec.steps));
    ASSERT_EQ(got.size(), want.size());
    int mismatches = 0;
    for (const auto& [step, loss] : want) {
      auto it = got.find(step);
      if (it != got.end() && it->second == loss) continue;
      if (++mismatches <= 5)
        ADD_FAILURE() << "step " << step << ": loss " << (it == got.end() ? std::nan("") : it->second)
                      << ", uninterrupted run " << loss;
    }
    EXPECT_EQ(mismatches, 0);
  }

  testing::TempDir dir;
  testing::TrainerJobSpec spec;
};

TEST_F(Chaos, KillNineOfARankRestartsFromTheLastCommitAndTrainsTheSameLosses) {
  TrainerJob job(dir.file("chaos"), spec);
  job.start();
  const std::optional<StatusReply> before = job.wait_for(committed_and_training, 120);
  ASSERT_TRUE(before) << job.diagnostics();
  ASSERT_LT(before->step(), spec.steps) << "the job ended before the kill";
  const pid_t victim = static_cast<pid_t>(before->ranks(1).pid());
  ASSERT_TRUE(testing::is_live_process(victim, "rwkv-train")) << victim;
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  const double killed_at = now_s();

  const std::optional<StatusReply> again =
      job.wait_for([](const StatusReply& s) { return s.generation() == 2 && s.ranks_alive() == 2; }, 120);
  ASSERT_TRUE(again) << job.diagnostics();
  std::printf("[ measured ] kill -9 of rank 1 at step %lld -> both ranks registered again (generation 2) after %.2f s\n",
              static_cast<long long>(before->step()), now_s() - killed_at);
  ASSERT_EQ(job.wait(240).value_or(-1), 0) << job.diagnostics();

  EXPECT_NE(job.read("launch.log").find("restarting the ranks from the last committed checkpoint"), std::string::npos)
      << job.diagnostics();
  const int64_t resumed = resumed_step(job);
  EXPECT_GE(resumed, before->last_committed().step()) << job.diagnostics();
  if (spec.device == "cuda") {
    EXPECT_NE(job.read("state/ranks.log").find(" on cuda:"), std::string::npos) << "the ranks did not train on GPUs";
  }
  EXPECT_LT(resumed, spec.steps);
  const JobRecord record = job.job_record();
  EXPECT_EQ(record.state, "completed");
  EXPECT_EQ(record.generation, 2);

  std::map<int64_t, double> reference;
  ASSERT_NO_FATAL_FAILURE(run_reference(&reference));
  // Steps after `resumed` exist only in the restarted run; the ones before
  // it were trained once, those in between twice (the second overwrote).
  expect_same_losses(job.losses(), reference);
  // The final weights and Adam moments, shard by shard, byte for byte.
  for (const char* shard : {"rank00000.safetensors", "rank00001.safetensors"}) {
    const std::string name = step_dir(spec.steps) + "/" + shard;
    const std::string got = job.read(name), want = testing::read_bytes(dir.file("reference/" + name));
    ASSERT_FALSE(want.empty()) << name;
    EXPECT_TRUE(got == want) << name << " differs from the uninterrupted run's";
  }
}

TEST_F(Chaos, KillNineOfTheControllerLosesNothingAndTheRanksReconnect) {
  TrainerJob job(dir.file("chaos"), spec);
  job.start();
  const std::optional<StatusReply> before = job.wait_for(committed_and_training, 120);
  ASSERT_TRUE(before) << job.diagnostics();
  const std::vector<int64_t> committed_before = testing::committed_steps(job.path("ckpt"));
  ASSERT_FALSE(committed_before.empty());
  const pid_t controller = job.controller_pid();
  ASSERT_TRUE(testing::is_live_process(controller, "rwkv-controller")) << controller;
  ASSERT_EQ(::kill(controller, SIGKILL), 0);
  const double killed_at = now_s();

  ASSERT_TRUE(testing::wait_until([&] { return job.controller_pid() > 0 && job.controller_pid() != controller; }, 60))
      << job.diagnostics();
  const double restarted_at = now_s();
  // The restarted controller hears the ranks again: the step moves on.
  const std::optional<StatusReply> after = job.wait_for(
      [&](const StatusReply& s) { return s.step() > before->step() + 1 || s.state() == "completed"; }, 60);
  ASSERT_TRUE(after) << job.diagnostics();
  const double heard_at = now_s();
  std::printf("[ measured ] kill -9 of the controller at step %lld -> restarted by rwkv-launch after %.2f s, "
              "ranks heard again after %.2f s\n",
              static_cast<long long>(before->step()), restarted_at - killed_at, heard_at - killed_at);
  // Reconnecting takes a reconnect back-off (at most 1 s); it took ~5 s
  // before the channel stopped waiting for its resolver (grpc_util.cpp).
  EXPECT_LT(heard_at - restarted_at, 4.0);
  ASSERT_EQ(job.wait(240).value_or(-1), 0) << job.diagnostics();

  const std::string launch_log = job.read("launch.log");
  EXPECT_NE(launch_log.find("rwkv-controller exited with status 137; restarting it"), std::string::npos) << launch_log;
  EXPECT_EQ(launch_log.find("restarting the ranks"), std::string::npos) << "the ranks should have reconnected\n"
                                                                        << job.diagnostics();
  EXPECT_NE(job.read("state/controller.log").find("controller: loaded job chaos (running, generation 1"),
            std::string::npos)
      << job.diagnostics();
  const JobRecord record = job.job_record();
  EXPECT_EQ(record.state, "completed");
  EXPECT_EQ(record.generation, 1);  // the same run: no rank restarted
  // No committed checkpoint was lost (keep_last 0 keeps them all) ...
  const std::vector<int64_t> committed_after = testing::committed_steps(job.path("ckpt"));
  for (int64_t step : committed_before)
    EXPECT_TRUE(std::find(committed_after.begin(), committed_after.end(), step) != committed_after.end()) << step;
  EXPECT_EQ(committed_after.back(), spec.steps);
  ControllerStore store(job.path("state/controller.db"));
  for (const CheckpointRecord& c : store.load_checkpoints("chaos")) {
    if (std::find(committed_before.begin(), committed_before.end(), c.step) != committed_before.end()) {
      EXPECT_EQ(c.state, "committed") << c.step;
    }
  }
  // ... and no metric point: they waited in the ranks while the controller was away.
  std::map<int64_t, double> reference;
  ASSERT_NO_FATAL_FAILURE(run_reference(&reference));
  expect_same_losses(job.losses(), reference);
}

TEST_F(Chaos, ARankKilledWhileWritingACheckpointNeverCommitsIt) {
  // Rank 1 stops between writing its shard of the first checkpoint after
  // the first interval and acking it; both ranks are silent from then on, so
  // the heartbeat timeout must not end the job before the test kills it.
  spec.heartbeat_timeout_s = 60;
  spec.env["RWKV_TEST_STALL_BEFORE_ACK"] = "1:" + std::to_string(spec.interval + 1);
  TrainerJob job(dir.file("chaos"), spec);
  job.start();
  std::smatch m;
  std::string ranks_log;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        ranks_log = job.read("state/ranks.log");
        return std::regex_search(ranks_log, m, std::regex(R"(rank 1 stalls before acking checkpoint step (\d+))"));
      },
      120))
      << job.diagnostics();
  const int64_t step = std::stoll(m[1]);
  // Rank 0 acked, rank 1 wrote its shard but did not.
  auto open_with_one_ack = [&] {
    for (const CheckpointInfo& c : job.checkpoints())
      if (c.step() == step) return c.state() == "requested" && c.acks() == 1;
    return false;
  };
  ASSERT_TRUE(testing::wait_until(open_with_one_ack, 30)) << job.diagnostics();
  const std::string partial = step_dir(step) + ".partial/";
  EXPECT_TRUE(fs::exists(job.path(partial + "rank00001.safetensors")));
  EXPECT_TRUE(fs::exists(job.path(partial + "manifest.json")));
  EXPECT_FALSE(fs::exists(job.path(step_dir(step) + "/COMMITTED")));
  const std::optional<StatusReply> s = job.status();
  ASSERT_TRUE(s && s->has_committed()) << job.diagnostics();
  const int64_t previous = s->last_committed().step();
  ASSERT_LT(previous, step);
  const pid_t victim = static_cast<pid_t>(s->ranks(1).pid());
  ASSERT_TRUE(testing::is_live_process(victim, "rwkv-train"));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);

  ASSERT_EQ(job.wait(240).value_or(-1), 0) << job.diagnostics();
  EXPECT_EQ(resumed_step(job), previous) << job.diagnostics();
  const std::string log = job.read("state/controller.log");
  const size_t aborted = log.find("checkpoint at step " + std::to_string(step) + " aborted, never committed");
  const size_t generation2 = log.find("restarts as generation 2");
  ASSERT_NE(aborted, std::string::npos) << log;
  ASSERT_NE(generation2, std::string::npos) << log;
  // If the restarted job wrote that step again, it committed only then.
  const size_t committed = log.find("checkpoint step " + std::to_string(step) + " committed");
  if (committed != std::string::npos) {
    EXPECT_GT(committed, generation2) << log;
  }
  const JobRecord record = job.job_record();
  EXPECT_EQ(record.state, "completed");
  EXPECT_EQ(record.generation, 2);
  EXPECT_EQ(testing::committed_steps(job.path("ckpt")).back(), spec.steps);
}

TEST_F(Chaos, AHungRankIsDetectedWithinTheHeartbeatTimeoutAndTheJobRestarts) {
  spec.heartbeat_timeout_s = 4;
  TrainerJob job(dir.file("chaos"), spec);
  job.start();
  const std::optional<StatusReply> before = job.wait_for(committed_and_training, 120);
  ASSERT_TRUE(before) << job.diagnostics();
  const pid_t victim = static_cast<pid_t>(before->ranks(1).pid());
  ASSERT_TRUE(testing::is_live_process(victim, "rwkv-train"));
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  const double stopped_at = now_s();

  const std::optional<StatusReply> failed = job.wait_for(
      [](const StatusReply& s) { return s.generation() == 1 && s.state() == "failed"; }, 60);
  const double detected_at = now_s();
  ASSERT_TRUE(failed) << job.diagnostics();
  const double detection = detected_at - stopped_at;
  // A rank's last heartbeat is at most heartbeat_s (0.02 s) and a step
  // before the stop; the check runs every 0.2 s; the rest is slack for a
  // loaded machine.
  EXPECT_GE(detection, spec.heartbeat_timeout_s - 0.5);
  EXPECT_LE(detection, spec.heartbeat_timeout_s + 2.0);
  EXPECT_NE(failed->reason().find("dead or hung"), std::string::npos) << failed->reason();
  EXPECT_NE(failed->reason().find("rank 1 ("), std::string::npos) << failed->reason();  // named, first or also silent
  EXPECT_NE(job.read("state/controller.log").find("the other ranks are told to stop"), std::string::npos);

  const std::optional<StatusReply> again =
      job.wait_for([](const StatusReply& s) { return s.generation() == 2 && s.ranks_alive() == 2; }, 120);
  ASSERT_TRUE(again) << job.diagnostics();
  std::printf("[ measured ] SIGSTOP of rank 1 at step %lld -> job failed after %.2f s (heartbeat timeout %.0f s), "
              "both ranks registered again %.2f s later\n",
              static_cast<long long>(before->step()), detection, spec.heartbeat_timeout_s, now_s() - detected_at);
  // rwkv-launch took the hung process down with the rest (mpirun kills it).
  EXPECT_TRUE(testing::wait_until([&] { return !testing::is_live_process(victim, "rwkv-train"); }, 30));
  ASSERT_EQ(job.wait(240).value_or(-1), 0) << job.diagnostics();
  EXPECT_NE(job.read("launch.log").find("the controller reports the job failed"), std::string::npos);
  const JobRecord record = job.job_record();
  EXPECT_EQ(record.state, "completed");
  EXPECT_EQ(record.generation, 2);
  EXPECT_EQ(testing::committed_steps(job.path("ckpt")).back(), spec.steps);
}

}  // namespace
}  // namespace rwkv::launch
