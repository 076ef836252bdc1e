// The controller's SQLite store: schema version and migrations, every record
// kind survives closing and reopening, metric points are idempotent, and a
// database from a newer controller is refused.
#include <gtest/gtest.h>

#include "launch/controller_store.h"
#include "launch/sqlite_db.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

TEST(ControllerStore, CreatesTheSchemaAtTheCurrentVersion) {
  testing::TempDir dir;
  ControllerStore store(dir.file("c.db"));
  EXPECT_EQ(store.schema_version(), ControllerStore::kSchemaVersion);
  EXPECT_TRUE(store.load_jobs().empty());
}

TEST(ControllerStore, EverythingSurvivesReopening) {
  testing::TempDir dir;
  {
    ControllerStore store(dir.file("c.db"));
    JobRecord job;
    job.id = "run1";
    job.state = "stopping";
    job.reason = "why";
    job.generation = 3;
    job.world_size = 2;
    job.total_steps = 100;
    job.config_digest = "abc";
    job.checkpoint_dir = "/ckpt";
    job.checkpoint_interval = 10;
    job.heartbeat_s = 2;
    job.heartbeat_timeout_s = 7;
    job.stop_step = 40;
    job.created_at = 1.5;
    job.updated_at = 2.5;
    store.save_job(job);
    RankRecord rank;
    rank.job = "run1";
    rank.rank = 1;
    rank.host = "h";
    rank.pid = 42;
    rank.session = "s";
    rank.generation = 3;
    rank.state = "alive";
    rank.step = 33;
    rank.checkpoint_started = 30;
    rank.last_heartbeat = 9.5;
    rank.registered_at = 8.5;
    store.save_rank(rank);
    store.save_checkpoint({"run1", 30, "committed", "interval", 3, 5.0, 6.0, "/ckpt/step_00000030", ""});
    store.save_checkpoint({"run1", 40, "requested", "stop", 3, 7.0, 0.0, "", ""});
    store.save_ack({"run1", 40, 1, true, "", {{"rank00001.shard", 123, "00000000000000ff"}}, 7.5});
    store.add_metrics({{"run1", 33, 0, "loss", 2.5, 9.0}, {"run1", 33, 0, "lr", 1e-3, 9.0}});
  }
  ControllerStore store(dir.file("c.db"));
  const std::vector<JobRecord> jobs = store.load_jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id, "run1");
  EXPECT_EQ(jobs[0].state, "stopping");
  EXPECT_EQ(jobs[0].reason, "why");
  EXPECT_EQ(jobs[0].generation, 3);
  EXPECT_EQ(jobs[0].world_size, 2);
  EXPECT_EQ(jobs[0].total_steps, 100);
  EXPECT_EQ(jobs[0].checkpoint_dir, "/ckpt");
  EXPECT_EQ(jobs[0].checkpoint_interval, 10);
  EXPECT_DOUBLE_EQ(jobs[0].heartbeat_timeout_s, 7);
  EXPECT_EQ(jobs[0].stop_step, 40);
  const std::vector<RankRecord> ranks = store.load_ranks("run1");
  ASSERT_EQ(ranks.size(), 1u);
  EXPECT_EQ(ranks[0].rank, 1);
  EXPECT_EQ(ranks[0].pid, 42);
  EXPECT_EQ(ranks[0].session, "s");
  EXPECT_EQ(ranks[0].step, 33);
  EXPECT_EQ(ranks[0].checkpoint_started, 30);
  const std::vector<CheckpointRecord> checkpoints = store.load_checkpoints("run1");
  ASSERT_EQ(checkpoints.size(), 2u);
  EXPECT_EQ(checkpoints[0].state, "committed");
  EXPECT_EQ(checkpoints[0].dir, "/ckpt/step_00000030");
  EXPECT_EQ(checkpoints[1].trigger, "stop");
  const std::vector<AckRecord> acks = store.load_acks("run1", 40);
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].files.size(), 1u);
  EXPECT_EQ(acks[0].files[0].name, "rank00001.shard");
  EXPECT_EQ(acks[0].files[0].bytes, 123u);
  EXPECT_EQ(acks[0].files[0].xxh3, "00000000000000ff");
  const auto latest = store.latest_metrics("run1");
  ASSERT_EQ(latest.count("loss"), 1u);
  EXPECT_DOUBLE_EQ(latest.at("loss").value, 2.5);
}

TEST(ControllerStore, MetricPointsAreIdempotentAndQueryable) {
  testing::TempDir dir;
  ControllerStore store(dir.file("c.db"));
  JobRecord job;
  job.id = "j";
  store.save_job(job);
  for (int step = 1; step <= 10; ++step)
    store.add_metrics({{"j", step, 0, "loss", 10.0 - step, 100.0 + step}, {"j", step, 0, "lr", 0.1, 100.0 + step}});
  store.add_metrics({{"j", 10, 0, "loss", 0.5, 111.0}});  // sent again (a retried heartbeat): replaces
  EXPECT_EQ(store.query_metrics("j", {}, 0, 0).size(), 20u);
  const auto loss = store.query_metrics("j", {"loss"}, 0, 0);
  ASSERT_EQ(loss.size(), 10u);
  EXPECT_DOUBLE_EQ(loss.back().value, 0.5);
  const auto last3 = store.query_metrics("j", {"loss"}, 0, 3);
  ASSERT_EQ(last3.size(), 3u);
  EXPECT_EQ(last3.front().step, 8);
  EXPECT_EQ(store.query_metrics("j", {"loss", "lr"}, 9, 0).size(), 4u);
  EXPECT_DOUBLE_EQ(store.latest_metrics("j").at("loss").value, 0.5);
}

TEST(ControllerStore, RefusesADatabaseFromANewerController) {
  testing::TempDir dir;
  {
    ControllerStore store(dir.file("c.db"));
    store.db().exec("UPDATE schema_version SET version = 99");
  }
  try {
    ControllerStore store(dir.file("c.db"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("schema version 99"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
}

TEST(ControllerStore, UnopenableFileIsAClearError) {
  try {
    ControllerStore store("/nonexistent-dir/sub/c.db");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/sub/c.db"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rwkv::launch
