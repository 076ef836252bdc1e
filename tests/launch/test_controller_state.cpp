// The controller's state machine, driven directly with a fake clock:
// registration and generations, failure detection, checkpoint coordination
// (committed only with every ack; a missing ack, a failed rank, a late rank
// or a wrong hash never commits), stop, and restart safety (a new
// ControllerState on the same database carries on).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/manifest.h"
#include "launch/checkpoint_commit.h"
#include "launch/controller_state.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

namespace fs = std::filesystem;

struct FakeClock {
  double wall = 1.7e9;
  double steady = 1000.0;
  Clock clock() {
    return {[this] { return wall; }, [this] { return steady; }};
  }
  void advance(double s) {
    wall += s;
    steady += s;
  }
};

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    state.reset();
    ControllerOptions o;
    o.db_path = dir.file("controller.db");
    o.checkpoint_timeout_s = 100;
    o.verify_hashes = true;
    state = std::make_unique<ControllerState>(o, clock.clock());
  }

  RegisterRequest reg(int rank, int world, int64_t step = 0, int64_t interval = 10, int64_t total = 100,
                      const std::string& digest = "d1") {
    RegisterRequest q;
    q.set_job("job");
    q.set_rank(rank);
    q.set_world_size(world);
    q.set_host("host" + std::to_string(rank));
    q.set_pid(1000 + rank);
    q.set_config_digest(digest);
    q.set_total_steps(total);
    q.set_step(step);
    q.set_checkpoint_dir(ckpt);
    q.set_checkpoint_interval(interval);
    return q;
  }

  // Registers ranks 0..world-1; returns their sessions.
  std::vector<std::string> register_all(int world, int64_t step = 0, int64_t interval = 10, int64_t total = 100) {
    std::vector<std::string> sessions;
    for (int r = 0; r < world; ++r) {
      RegisterReply reply = state->register_rank(reg(r, world, step, interval, total));
      sessions.push_back(reply.session());
      last = reply.command();
    }
    return sessions;
  }

  Command heartbeat(int rank, const std::string& session, int64_t step, int64_t started = 0,
                    const std::map<std::string, double>& metrics = {}) {
    HeartbeatRequest q;
    q.set_job("job");
    q.set_rank(rank);
    q.set_session(session);
    q.set_step(step);
    q.set_checkpoint_started(started);
    for (const auto& [name, value] : metrics) {
      MetricPoint* p = q.add_points();
      p->set_step(step);
      p->set_name(name);
      p->set_value(value);
      p->set_wall_time(clock.wall);
    }
    return state->heartbeat(q).command();
  }

  AckCheckpointReply ack(int rank, const std::string& session, int64_t step, int world,
                         const std::vector<ShardFile>& files) {
    AckCheckpointRequest q;
    q.set_job("job");
    q.set_rank(rank);
    q.set_session(session);
    q.set_step(step);
    q.set_ok(true);
    for (const ShardFile& f : files) {
      CheckpointFile* out = q.add_files();
      out->set_name(f.name);
      out->set_bytes(f.bytes);
      out->set_xxh3(f.xxh3);
    }
    return state->ack_checkpoint(q);
  }

  AckCheckpointReply write_and_ack(int rank, const std::string& session, int64_t step, int world) {
    return ack(rank, session, step, world, testing::write_fake_shard(ckpt, step, rank, world));
  }

  void finish(int rank, const std::string& session, FinishRequest::Outcome outcome, int64_t step,
              const std::string& message = "") {
    FinishRequest q;
    q.set_job("job");
    q.set_rank(rank);
    q.set_session(session);
    q.set_outcome(outcome);
    q.set_step(step);
    q.set_message(message);
    state->finish(q);
  }

  CheckpointInfo checkpoint(int64_t step) {
    const CheckpointsReply all = state->checkpoints("job");
    for (const CheckpointInfo& c : all.checkpoints())
      if (c.step() == step) return c;
    ADD_FAILURE() << "no checkpoint at step " << step;
    return {};
  }

  testing::TempDir dir;
  std::string ckpt = dir.file("ckpt");
  FakeClock clock;
  std::unique_ptr<ControllerState> state;
  Command last;
};

TEST_F(StateTest, RegistrationCreatesTheJobAndSchedulesTheFirstCheckpoint) {
  const auto sessions = register_all(2);
  EXPECT_NE(sessions[0], sessions[1]);
  const StatusReply s = state->status("");
  EXPECT_EQ(s.job(), "job");
  EXPECT_EQ(s.state(), "running");
  EXPECT_EQ(s.generation(), 1);
  EXPECT_EQ(s.world_size(), 2);
  EXPECT_EQ(s.ranks_alive(), 2);
  EXPECT_EQ(s.total_steps(), 100);
  // The first interval multiple, announced at registration, before any rank gets there.
  EXPECT_EQ(last.kind(), Command::CHECKPOINT);
  EXPECT_EQ(last.step(), 10);
  EXPECT_TRUE(fs::is_directory(checkpoint_partial_dir(ckpt, 10)));
}

TEST_F(StateTest, InvalidRegistrationsAreRefusedWithReasons) {
  RegisterRequest bad = reg(0, 2);
  bad.set_job("../etc");
  EXPECT_THROW(state->register_rank(bad), RpcError);
  bad = reg(2, 2);
  EXPECT_THROW(state->register_rank(bad), RpcError);
  bad = reg(0, 2);
  bad.set_checkpoint_dir("relative/dir");
  try {
    state->register_rank(bad);
    FAIL();
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), RpcError::Code::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("absolute"), std::string::npos) << e.what();
  }
}

TEST_F(StateTest, ConfigDigestMismatchIsRefusedWithAHint) {
  state->register_rank(reg(0, 2));
  try {
    state->register_rank(reg(1, 2, 0, 10, 100, "other-digest"));
    FAIL() << "expected a refusal";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), RpcError::Code::FailedPrecondition);
    const std::string m = e.what();
    EXPECT_NE(m.find("config digest 'other-digest'"), std::string::npos) << m;
    EXPECT_NE(m.find("'d1'"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
}

TEST_F(StateTest, HeartbeatsCarryMetricsIntoStatusAndHistory) {
  const auto s = register_all(1, 0, 0, 100);
  heartbeat(0, s[0], 10, 0, {{"loss", 4.0}, {"tokens_per_s", 1000.0}});
  clock.advance(10);
  heartbeat(0, s[0], 20, 0, {{"loss", 3.5}, {"tokens_per_s", 1100.0}});
  const StatusReply st = state->status("job");
  EXPECT_EQ(st.step(), 20);
  ASSERT_TRUE(st.has_loss());
  EXPECT_DOUBLE_EQ(st.loss(), 3.5);
  EXPECT_DOUBLE_EQ(st.tokens_per_s(), 1100.0);
  EXPECT_NEAR(st.eta_s(), 80.0, 1e-9);  // 1 step/s, 80 steps left
  MetricsRequest q;
  q.set_job("job");
  q.add_names("loss");
  const MetricsReply m = state->metrics(q);
  ASSERT_EQ(m.points_size(), 2);
  EXPECT_EQ(m.points(0).step(), 10);
  EXPECT_DOUBLE_EQ(m.points(1).value(), 3.5);
}

TEST_F(StateTest, MissedHeartbeatsFailTheRankAndStopTheOthers) {
  const auto s = register_all(2);
  clock.advance(30);
  heartbeat(0, s[0], 5);
  clock.advance(31);  // rank 1: 61 s silent (> 60 s); rank 0: 31 s
  state->tick();
  const StatusReply st = state->status("job");
  EXPECT_EQ(st.state(), "failed");
  EXPECT_NE(st.reason().find("rank 1"), std::string::npos) << st.reason();
  EXPECT_NE(st.reason().find("no heartbeat"), std::string::npos) << st.reason();
  EXPECT_EQ(st.ranks(1).state(), "failed");
  EXPECT_EQ(st.ranks(0).state(), "alive");
  const Command c = heartbeat(0, s[0], 6);
  EXPECT_EQ(c.kind(), Command::STOP);
  EXPECT_EQ(c.step(), 0);
  EXPECT_NE(c.reason().find("rank 1"), std::string::npos) << c.reason();
  // The open checkpoint can never complete: aborted.
  EXPECT_EQ(checkpoint(10).state(), "aborted");
}

TEST_F(StateTest, ARankThatNeverRegistersFailsTheJob) {
  const std::string s0 = state->register_rank(reg(0, 2)).session();
  clock.advance(30);
  heartbeat(0, s0, 1);
  clock.advance(31);
  state->tick();
  const StatusReply st = state->status("job");
  EXPECT_EQ(st.state(), "failed");
  EXPECT_NE(st.reason().find("did not register"), std::string::npos) << st.reason();
}

TEST_F(StateTest, CheckpointIsCommittedOnlyWhenEveryRankAcked) {
  const auto s = register_all(3);
  EXPECT_EQ(write_and_ack(0, s[0], 10, 3).state(), "requested");
  EXPECT_EQ(write_and_ack(1, s[1], 10, 3).state(), "requested");
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(10).state(), "requested");
  EXPECT_EQ(checkpoint(10).acks(), 2);
  EXPECT_FALSE(fs::exists(checkpoint_step_dir(ckpt, 10)));
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());

  EXPECT_EQ(write_and_ack(2, s[2], 10, 3).state(), "committing");
  state->wait_for_commits();
  const CheckpointInfo c = checkpoint(10);
  EXPECT_EQ(c.state(), "committed") << c.error();
  EXPECT_EQ(c.dir(), checkpoint_step_dir(ckpt, 10));
  EXPECT_EQ(testing::committed_steps(ckpt), std::vector<int64_t>{10});
  EXPECT_FALSE(fs::exists(checkpoint_partial_dir(ckpt, 10)));
  // The trainer's own loader accepts it: marker, manifest, sizes and hashes.
  checkpoint::LoadedCheckpoint loaded(c.dir());
  EXPECT_EQ(loaded.manifest().step, 10);
  EXPECT_EQ(loaded.manifest().files.size(), 3u);
  EXPECT_EQ(state->status("job").last_committed().step(), 10);
  // The next interval checkpoint is announced.
  const Command next = heartbeat(0, s[0], 11);
  EXPECT_EQ(next.kind(), Command::CHECKPOINT);
  EXPECT_EQ(next.step(), 20);
}

TEST_F(StateTest, AMissingAckIsNeverCommitted) {
  const auto s = register_all(3);
  write_and_ack(0, s[0], 10, 3);
  write_and_ack(1, s[1], 10, 3);
  testing::write_fake_shard(ckpt, 10, 2, 3);  // rank 2 wrote its file but never acked
  for (int i = 0; i < 2; ++i) {               // past the checkpoint timeout, every rank alive
    clock.advance(50.5);
    for (int r = 0; r < 3; ++r) heartbeat(r, s[static_cast<size_t>(r)], r < 2 ? 10 : 9, r < 2 ? 10 : 0);
    state->tick();
  }
  state->wait_for_commits();
  CheckpointInfo c = checkpoint(10);
  EXPECT_EQ(c.state(), "aborted");
  EXPECT_NE(c.error().find("missing ranks: 2"), std::string::npos) << c.error();
  // A late ack does not revive it.
  EXPECT_EQ(ack(2, s[2], 10, 3, {describe_file(checkpoint_partial_dir(ckpt, 10), testing::fake_shard_name(2))}).state(),
            "aborted");
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(10).state(), "aborted");
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());
  EXPECT_FALSE(fs::exists(checkpoint_step_dir(ckpt, 10)));
}

TEST_F(StateTest, ARankThatCannotWriteItsShardAbortsTheCheckpoint) {
  const auto s = register_all(2);
  write_and_ack(0, s[0], 10, 2);
  AckCheckpointRequest q;
  q.set_job("job");
  q.set_rank(1);
  q.set_session(s[1]);
  q.set_step(10);
  q.set_ok(false);
  q.set_error("disk full");
  EXPECT_EQ(state->ack_checkpoint(q).state(), "aborted");
  EXPECT_NE(checkpoint(10).error().find("disk full"), std::string::npos);
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());
}

TEST_F(StateTest, AHashThatDisagreesWithTheFileIsNeverCommitted) {
  const auto s = register_all(2);
  write_and_ack(0, s[0], 10, 2);
  std::vector<ShardFile> files = testing::write_fake_shard(ckpt, 10, 1, 2);
  files[0].xxh3 = "0000000000000000";
  EXPECT_EQ(ack(1, s[1], 10, 2, files).state(), "committing");
  state->wait_for_commits();
  const CheckpointInfo c = checkpoint(10);
  EXPECT_EQ(c.state(), "aborted");
  EXPECT_NE(c.error().find(testing::fake_shard_name(1)), std::string::npos) << c.error();
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());
}

TEST_F(StateTest, AManifestThatOmitsARankIsNeverCommitted) {
  const auto s = register_all(2);
  // Rank 0's manifest believes the world has one rank.
  std::vector<ShardFile> files0 = testing::write_fake_shard(ckpt, 10, 0, 1);
  ack(0, s[0], 10, 2, files0);
  write_and_ack(1, s[1], 10, 2);
  state->wait_for_commits();
  const CheckpointInfo c = checkpoint(10);
  EXPECT_EQ(c.state(), "aborted");
  EXPECT_NE(c.error().find("does not list"), std::string::npos) << c.error();
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());
}

TEST_F(StateTest, ARankPastTheStepWithoutItsShardAbortsAndTheNextIsScheduled) {
  const auto s = register_all(2);
  const Command c = heartbeat(0, s[0], 12, /*started=*/0);  // heard of step 10 too late
  EXPECT_EQ(checkpoint(10).state(), "aborted");
  EXPECT_NE(checkpoint(10).error().find("too late"), std::string::npos);
  EXPECT_EQ(c.kind(), Command::NONE);
  EXPECT_EQ(heartbeat(0, s[0], 13).kind(), Command::NONE);  // short of the end, the back-off holds
  clock.advance(6);  // the back-off after an abort
  const Command next = heartbeat(0, s[0], 13);
  EXPECT_EQ(next.kind(), Command::CHECKPOINT);
  EXPECT_EQ(next.step(), 20);
}

// A fast rank that missed the interval checkpoint before the end must still
// get the final one: at the last step it waits on this heartbeat's command,
// and a request held back by the abort's back-off would come after it exits.
TEST_F(StateTest, ARankThatMissedTheLastIntervalCheckpointStillGetsTheFinalOne) {
  const auto s = register_all(1, 0, 10, 12);
  const Command c = heartbeat(0, s[0], 12, /*started=*/0);  // ran past step 10 before hearing of it
  EXPECT_EQ(checkpoint(10).state(), "aborted");
  ASSERT_EQ(c.kind(), Command::CHECKPOINT) << c.reason();
  EXPECT_EQ(c.step(), 12);
  EXPECT_EQ(write_and_ack(0, s[0], 12, 1).state(), "committing");
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(12).state(), "committed");
}

// The same when the last interval checkpoint is still committing as the
// rank reaches the end: the final one is asked for beside it.
TEST_F(StateTest, TheFinalCheckpointIsAskedForWhileTheLastIntervalOneIsStillCommitting) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> waiting{0};
  ControllerOptions o;
  o.db_path = dir.file("held.db");
  o.checkpoint_timeout_s = 100;
  o.before_commit = [&, released](int64_t step) {
    if (step != 10) return;
    ++waiting;
    released.wait();
  };
  state = std::make_unique<ControllerState>(o, clock.clock());
  const auto s = register_all(1, 0, 10, 12);
  ASSERT_EQ(heartbeat(0, s[0], 9).step(), 10);
  EXPECT_EQ(write_and_ack(0, s[0], 10, 1).state(), "committing");
  while (waiting.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Command c = heartbeat(0, s[0], 12, /*started=*/10);
  EXPECT_EQ(checkpoint(10).state(), "committing");
  ASSERT_EQ(c.kind(), Command::CHECKPOINT) << c.reason();
  EXPECT_EQ(c.step(), 12);
  EXPECT_EQ(write_and_ack(0, s[0], 12, 1).state(), "committing");
  release.set_value();
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(10).state(), "committed");
  EXPECT_EQ(checkpoint(12).state(), "committed");
  finish(0, s[0], FinishRequest::COMPLETED, 12);
  EXPECT_EQ(state->status("").state(), "completed");
  EXPECT_EQ(testing::committed_steps(ckpt), (std::vector<int64_t>{10, 12}));
}

TEST_F(StateTest, ARestartedControllerKnowsEverythingAndFinishesTheCheckpoint) {
  auto s = register_all(2);
  heartbeat(0, s[0], 9, 0, {{"loss", 2.0}});
  heartbeat(1, s[1], 9);
  write_and_ack(0, s[0], 10, 2);
  clock.advance(1000);  // the controller was away a long time
  open();
  state->tick();  // ranks get a fresh timeout: nobody could heartbeat meanwhile
  StatusReply st = state->status("");
  EXPECT_EQ(st.job(), "job");
  EXPECT_EQ(st.state(), "running");
  EXPECT_EQ(st.ranks_alive(), 2);
  EXPECT_EQ(st.step(), 9);
  EXPECT_DOUBLE_EQ(st.loss(), 2.0);
  EXPECT_EQ(checkpoint(10).acks(), 1);
  // The ranks carry on with their sessions.
  const Command c = heartbeat(1, s[1], 10);
  EXPECT_EQ(c.kind(), Command::CHECKPOINT);
  EXPECT_EQ(c.step(), 10);
  EXPECT_EQ(write_and_ack(1, s[1], 10, 2).state(), "committing");
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(10).state(), "committed");
}

TEST_F(StateTest, ACommitInterruptedBetweenRenameAndMarkerFinishesOnRestart) {
  // What a controller killed after step 3 of the commit leaves behind.
  const auto s = register_all(1);
  const std::vector<ShardFile> files = testing::write_fake_shard(ckpt, 10, 0, 1);
  state.reset();
  fs::rename(checkpoint_partial_dir(ckpt, 10), checkpoint_step_dir(ckpt, 10));
  {
    ControllerStore store(dir.file("controller.db"));
    CheckpointRecord c = store.load_checkpoints("job").at(0);
    c.state = "committing";
    store.save_checkpoint(c);
    AckRecord a;
    a.job = "job";
    a.step = 10;
    a.rank = 0;
    for (const ShardFile& f : files) a.files.push_back({f.name, f.bytes, f.xxh3});
    store.save_ack(a);
  }
  EXPECT_TRUE(testing::committed_steps(ckpt).empty());
  open();
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(10).state(), "committed") << checkpoint(10).error();
  EXPECT_EQ(testing::committed_steps(ckpt), std::vector<int64_t>{10});
}

TEST_F(StateTest, RegisteringAgainStartsANewGenerationAndSupersedesOldProcesses) {
  const auto old = register_all(2);
  write_and_ack(0, old[0], 10, 2);
  const RegisterReply again = state->register_rank(reg(0, 2, 0));
  EXPECT_EQ(again.generation(), 2);
  // The restart dropped the old attempt at step 10 and asked again: no acks.
  EXPECT_EQ(checkpoint(10).state(), "requested");
  EXPECT_EQ(checkpoint(10).acks(), 0);
  StatusReply st = state->status("job");
  EXPECT_EQ(st.ranks(1).state(), "pending");
  // The old rank 1 is told to go away.
  const Command c = heartbeat(1, old[1], 11);
  EXPECT_EQ(c.kind(), Command::STOP);
  EXPECT_NE(c.reason().find("superseded"), std::string::npos);
  // A new rank 1 joins generation 2.
  EXPECT_EQ(state->register_rank(reg(1, 2, 0)).generation(), 2);
  EXPECT_EQ(state->status("job").ranks_alive(), 2);
  // The dropped ack stays dropped in the database too.
  open();
  EXPECT_EQ(checkpoint(10).acks(), 0);
}

TEST_F(StateTest, RetentionKeepsTheNewestAndTheMultiples) {
  RegisterRequest q = reg(0, 1, 0, 10, 0);
  q.set_keep_last(2);
  q.set_keep_every(20);
  const std::string session = state->register_rank(q).session();
  for (int64_t step = 10; step <= 50; step += 10) {
    clock.advance(1000);  // slow steps: the next checkpoint is the next multiple
    const Command c = heartbeat(0, session, step);
    ASSERT_EQ(c.step(), step);
    write_and_ack(0, session, step, 1);
    state->wait_for_commits();
  }
  // 50 and 40 are the newest two; 20 is a multiple of 20; 10 and 30 go.
  EXPECT_EQ(testing::committed_steps(ckpt), (std::vector<int64_t>{20, 40, 50}));
  EXPECT_EQ(checkpoint(10).state(), "removed");
  EXPECT_EQ(checkpoint(30).state(), "removed");
  EXPECT_FALSE(fs::exists(checkpoint_step_dir(ckpt, 30)));
  EXPECT_EQ(checkpoint(50).state(), "committed");
}

TEST_F(StateTest, GracefulStopCheckpointsThenStops) {
  const auto s = register_all(2, 0, /*interval=*/0, /*total=*/0);
  heartbeat(0, s[0], 5);
  heartbeat(1, s[1], 5);
  const StopReply r = state->stop("job", false);
  EXPECT_EQ(r.step(), 7);  // two steps ahead
  for (int rank = 0; rank < 2; ++rank) {
    const Command c = heartbeat(rank, s[static_cast<size_t>(rank)], 6);
    EXPECT_EQ(c.kind(), Command::STOP);
    EXPECT_EQ(c.step(), 7);
  }
  write_and_ack(0, s[0], 7, 2);
  write_and_ack(1, s[1], 7, 2);
  state->wait_for_commits();
  EXPECT_EQ(checkpoint(7).state(), "committed");
  EXPECT_EQ(checkpoint(7).trigger(), "stop");
  EXPECT_EQ(state->status("job").state(), "stopping");
  finish(0, s[0], FinishRequest::STOPPED, 7);
  finish(1, s[1], FinishRequest::STOPPED, 7);
  EXPECT_EQ(state->status("job").state(), "stopped");
}

TEST_F(StateTest, StopNowStopsWithoutACheckpoint) {
  const auto s = register_all(2);
  state->stop("job", true);
  const Command c = heartbeat(0, s[0], 3);
  EXPECT_EQ(c.kind(), Command::STOP);
  EXPECT_EQ(c.step(), 0);
  EXPECT_EQ(checkpoint(10).state(), "aborted");
  EXPECT_THROW(state->request_checkpoint("job"), RpcError);
}

TEST_F(StateTest, CheckpointOnCommandIsPlacedAheadOfEveryRank) {
  const auto s = register_all(2, 0, 0, 0);
  heartbeat(0, s[0], 40);
  heartbeat(1, s[1], 41);
  const RequestCheckpointReply r = state->request_checkpoint("job");
  EXPECT_EQ(r.step(), 43);
  EXPECT_EQ(heartbeat(0, s[0], 41).step(), 43);
  EXPECT_EQ(state->request_checkpoint("job").step(), 43);  // one at a time
  EXPECT_EQ(checkpoint(43).trigger(), "command");
}

TEST_F(StateTest, JobCompletesWhenEveryRankFinishesAndFailsWhenOneFails) {
  const auto s = register_all(2, 0, 0, 0);
  finish(0, s[0], FinishRequest::COMPLETED, 100);
  EXPECT_EQ(state->status("job").state(), "running");
  finish(1, s[1], FinishRequest::COMPLETED, 100);
  EXPECT_EQ(state->status("job").state(), "completed");

  // Training goes on (more steps): a new generation.
  const RegisterReply again = state->register_rank(reg(0, 2, 100, 0, 200));
  EXPECT_EQ(again.generation(), 2);
  const std::string s1 = state->register_rank(reg(1, 2, 100, 0, 200)).session();
  finish(1, s1, FinishRequest::FAILED, 120, "CUDA error");
  const StatusReply st = state->status("job");
  EXPECT_EQ(st.state(), "failed");
  EXPECT_NE(st.reason().find("CUDA error"), std::string::npos) << st.reason();
}

}  // namespace
}  // namespace rwkv::launch
