// The controller's durable state in SQLite: jobs, ranks, checkpoints (with
// each rank's acknowledgement) and the metric history. The controller keeps
// a copy in memory and writes every change through, so a restarted
// controller (same --db) knows everything the old one knew.
//
// Schema changes are migrations: kMigrations[i] moves version i to i+1 and
// the schema_version table says where a file stands. A file from a newer
// controller is refused rather than misread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "launch/sqlite_db.h"

namespace rwkv::launch {

struct JobRecord {
  std::string id;
  std::string state = "running";  // running, stopping, stopped, completed, failed
  std::string reason;             // why the state changed last
  int64_t generation = 1;         // bumps when the ranks start again (a restart)
  int world_size = 0;
  int64_t total_steps = 0;
  std::string config_digest;
  std::string checkpoint_dir;
  int64_t checkpoint_interval = 0;
  double heartbeat_s = 5.0;
  double heartbeat_timeout_s = 60.0;
  int64_t stop_step = -1;  // -1 no stop; 0 stop now; > 0 stop after the checkpoint of that step
  int64_t keep_last = 0;   // retention: committed checkpoints kept (0 = all)
  int64_t keep_every = 0;  // retention: also keep multiples of this step (0 = none)
  double created_at = 0, updated_at = 0;
};

struct RankRecord {
  std::string job;
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  std::string session;
  int64_t generation = 0;
  std::string state = "pending";  // pending, alive, failed, finished
  int64_t step = 0;
  int64_t checkpoint_started = 0;
  double last_heartbeat = 0;  // wall time
  double registered_at = 0;
  std::string reason;
};

struct CheckpointRecord {
  std::string job;
  int64_t step = 0;
  std::string state = "requested";  // requested, committing, committed, aborted, removed
  std::string trigger;              // interval, final, command, stop
  int64_t generation = 0;
  double requested_at = 0, committed_at = 0;
  std::string dir;    // the committed directory
  std::string error;  // why it was aborted
};

struct AckFile {
  std::string name;
  uint64_t bytes = 0;
  std::string xxh3;
};

struct AckRecord {
  std::string job;
  int64_t step = 0;
  int rank = 0;
  bool ok = true;
  std::string error;
  std::vector<AckFile> files;
  double acked_at = 0;
};

struct MetricRecord {
  std::string job;
  int64_t step = 0;
  int rank = 0;
  std::string name;
  double value = 0;
  double wall_time = 0;
};

class ControllerStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database and applies pending migrations.
  explicit ControllerStore(const std::string& path);
  int schema_version();
  SqliteDb& db() { return db_; }

  // Upserts (by primary key).
  void save_job(const JobRecord& job);
  void save_rank(const RankRecord& rank);
  void save_checkpoint(const CheckpointRecord& checkpoint);
  void save_ack(const AckRecord& ack);
  // A checkpoint step asked for again (after an abort) starts with no acks.
  void delete_acks(const std::string& job, int64_t step);
  // Idempotent: a point (job, step, rank, name) sent twice is stored once.
  void add_metrics(const std::vector<MetricRecord>& points);

  std::vector<JobRecord> load_jobs();  // oldest first
  std::vector<RankRecord> load_ranks(const std::string& job);
  std::vector<CheckpointRecord> load_checkpoints(const std::string& job);  // by step
  std::vector<AckRecord> load_acks(const std::string& job, int64_t step);  // by rank
  // Points with step >= since_step, names filtered (empty: all); limit > 0
  // keeps the last `limit` distinct steps. Ordered by step, name, rank.
  std::vector<MetricRecord> query_metrics(const std::string& job, const std::vector<std::string>& names,
                                          int64_t since_step, int64_t limit);
  // The newest point of every metric name.
  std::map<std::string, MetricRecord> latest_metrics(const std::string& job);

 private:
  void migrate();
  SqliteDb db_;
};

}  // namespace rwkv::launch
