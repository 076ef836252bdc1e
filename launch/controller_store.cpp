#include "launch/controller_store.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace rwkv::launch {

namespace {

// kMigrations[i] takes the schema from version i to i + 1. Append, never edit.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
    CREATE TABLE jobs (
      id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      reason TEXT NOT NULL DEFAULT '',
      generation INTEGER NOT NULL,
      world_size INTEGER NOT NULL,
      total_steps INTEGER NOT NULL,
      config_digest TEXT NOT NULL,
      checkpoint_dir TEXT NOT NULL,
      checkpoint_interval INTEGER NOT NULL,
      heartbeat_s REAL NOT NULL,
      heartbeat_timeout_s REAL NOT NULL,
      stop_step INTEGER NOT NULL,
      keep_last INTEGER NOT NULL,
      keep_every INTEGER NOT NULL,
      created_at REAL NOT NULL,
      updated_at REAL NOT NULL);
    CREATE TABLE ranks (
      job TEXT NOT NULL REFERENCES jobs(id),
      rank INTEGER NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      session TEXT NOT NULL,
      generation INTEGER NOT NULL,
      state TEXT NOT NULL,
      step INTEGER NOT NULL,
      checkpoint_started INTEGER NOT NULL,
      last_heartbeat REAL NOT NULL,
      registered_at REAL NOT NULL,
      reason TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (job, rank));
    CREATE TABLE checkpoints (
      job TEXT NOT NULL REFERENCES jobs(id),
      step INTEGER NOT NULL,
      state TEXT NOT NULL,
      trigger TEXT NOT NULL,
      generation INTEGER NOT NULL,
      requested_at REAL NOT NULL,
      committed_at REAL NOT NULL,
      dir TEXT NOT NULL,
      error TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (job, step));
    CREATE TABLE checkpoint_acks (
      job TEXT NOT NULL,
      step INTEGER NOT NULL,
      rank INTEGER NOT NULL,
      ok INTEGER NOT NULL,
      error TEXT NOT NULL,
      files TEXT NOT NULL,
      acked_at REAL NOT NULL,
      PRIMARY KEY (job, step, rank),
      FOREIGN KEY (job, step) REFERENCES checkpoints(job, step));
    CREATE TABLE metrics (
      job TEXT NOT NULL REFERENCES jobs(id),
      step INTEGER NOT NULL,
      rank INTEGER NOT NULL,
      name TEXT NOT NULL,
      value REAL NOT NULL,
      wall_time REAL NOT NULL,
      PRIMARY KEY (job, name, step, rank));
    CREATE INDEX metrics_by_step ON metrics (job, step);
    )sql",
};
constexpr int kMigrationCount = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
static_assert(kMigrationCount == ControllerStore::kSchemaVersion);

std::string files_to_json(const std::vector<AckFile>& files) {
  nlohmann::json j = nlohmann::json::array();
  for (const AckFile& f : files) j.push_back({{"name", f.name}, {"bytes", f.bytes}, {"xxh3", f.xxh3}});
  return j.dump();
}

std::vector<AckFile> files_from_json(const std::string& text) {
  std::vector<AckFile> files;
  for (const auto& f : nlohmann::json::parse(text))
    files.push_back({f.at("name").get<std::string>(), f.at("bytes").get<uint64_t>(), f.at("xxh3").get<std::string>()});
  return files;
}

}  // namespace

ControllerStore::ControllerStore(const std::string& path) : db_(path) { migrate(); }

int ControllerStore::schema_version() {
  SqliteStmt q(db_, "SELECT version FROM schema_version");
  return q.step() ? static_cast<int>(q.col_int(0)) : 0;
}

void ControllerStore::migrate() {
  SqliteTransaction tx(db_);
  db_.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  int version = schema_version();
  if (version == 0) SqliteStmt(db_, "INSERT INTO schema_version (version) VALUES (0)").run();
  RWKV_CHECK(version <= kSchemaVersion, db_.path(), ": controller database schema version ", version,
             ", this rwkv-controller knows versions up to ", kSchemaVersion,
             "\n  ---> HINT: run the newer rwkv-controller that wrote it, or start with a new --db");
  for (; version < kSchemaVersion; ++version) db_.exec(kMigrations[version]);
  SqliteStmt(db_, "UPDATE schema_version SET version = ?").bind(1, kSchemaVersion).run();
  tx.commit();
}

void ControllerStore::save_job(const JobRecord& j) {
  SqliteStmt(db_,
             "INSERT OR REPLACE INTO jobs (id, state, reason, generation, world_size, total_steps, config_digest, "
             "checkpoint_dir, checkpoint_interval, heartbeat_s, heartbeat_timeout_s, stop_step, keep_last, keep_every, "
             "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
      .bind(1, j.id).bind(2, j.state).bind(3, j.reason).bind(4, j.generation).bind(5, j.world_size)
      .bind(6, j.total_steps).bind(7, j.config_digest).bind(8, j.checkpoint_dir).bind(9, j.checkpoint_interval)
      .bind(10, j.heartbeat_s).bind(11, j.heartbeat_timeout_s).bind(12, j.stop_step).bind(13, j.keep_last)
      .bind(14, j.keep_every).bind(15, j.created_at).bind(16, j.updated_at)
      .run();
}

void ControllerStore::save_rank(const RankRecord& r) {
  SqliteStmt(db_,
             "INSERT OR REPLACE INTO ranks (job, rank, host, pid, session, generation, state, step, "
             "checkpoint_started, last_heartbeat, registered_at, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
      .bind(1, r.job).bind(2, r.rank).bind(3, r.host).bind(4, r.pid).bind(5, r.session).bind(6, r.generation)
      .bind(7, r.state).bind(8, r.step).bind(9, r.checkpoint_started).bind(10, r.last_heartbeat)
      .bind(11, r.registered_at).bind(12, r.reason)
      .run();
}

void ControllerStore::save_checkpoint(const CheckpointRecord& c) {
  SqliteStmt(db_,
             "INSERT OR REPLACE INTO checkpoints (job, step, state, trigger, generation, requested_at, committed_at, "
             "dir, error) VALUES (?,?,?,?,?,?,?,?,?)")
      .bind(1, c.job).bind(2, c.step).bind(3, c.state).bind(4, c.trigger).bind(5, c.generation)
      .bind(6, c.requested_at).bind(7, c.committed_at).bind(8, c.dir).bind(9, c.error)
      .run();
}

void ControllerStore::save_ack(const AckRecord& a) {
  SqliteStmt(db_,
             "INSERT OR REPLACE INTO checkpoint_acks (job, step, rank, ok, error, files, acked_at) "
             "VALUES (?,?,?,?,?,?,?)")
      .bind(1, a.job).bind(2, a.step).bind(3, a.rank).bind(4, a.ok ? 1 : 0).bind(5, a.error)
      .bind(6, files_to_json(a.files)).bind(7, a.acked_at)
      .run();
}

void ControllerStore::delete_acks(const std::string& job, int64_t step) {
  SqliteStmt(db_, "DELETE FROM checkpoint_acks WHERE job = ? AND step = ?").bind(1, job).bind(2, step).run();
}

void ControllerStore::add_metrics(const std::vector<MetricRecord>& points) {
  if (points.empty()) return;
  SqliteStmt insert(db_,
                    "INSERT OR REPLACE INTO metrics (job, step, rank, name, value, wall_time) VALUES (?,?,?,?,?,?)");
  for (const MetricRecord& p : points) {
    insert.bind(1, p.job).bind(2, p.step).bind(3, p.rank).bind(4, p.name).bind(5, p.value).bind(6, p.wall_time);
    insert.run();
  }
}

std::vector<JobRecord> ControllerStore::load_jobs() {
  std::vector<JobRecord> jobs;
  SqliteStmt q(db_,
               "SELECT id, state, reason, generation, world_size, total_steps, config_digest, checkpoint_dir, "
               "checkpoint_interval, heartbeat_s, heartbeat_timeout_s, stop_step, keep_last, keep_every, created_at, "
               "updated_at FROM jobs ORDER BY created_at, id");
  while (q.step()) {
    JobRecord j;
    j.id = q.col_text(0);
    j.state = q.col_text(1);
    j.reason = q.col_text(2);
    j.generation = q.col_int(3);
    j.world_size = static_cast<int>(q.col_int(4));
    j.total_steps = q.col_int(5);
    j.config_digest = q.col_text(6);
    j.checkpoint_dir = q.col_text(7);
    j.checkpoint_interval = q.col_int(8);
    j.heartbeat_s = q.col_double(9);
    j.heartbeat_timeout_s = q.col_double(10);
    j.stop_step = q.col_int(11);
    j.keep_last = q.col_int(12);
    j.keep_every = q.col_int(13);
    j.created_at = q.col_double(14);
    j.updated_at = q.col_double(15);
    jobs.push_back(j);
  }
  return jobs;
}

std::vector<RankRecord> ControllerStore::load_ranks(const std::string& job) {
  std::vector<RankRecord> ranks;
  SqliteStmt q(db_,
               "SELECT rank, host, pid, session, generation, state, step, checkpoint_started, last_heartbeat, "
               "registered_at, reason FROM ranks WHERE job = ? ORDER BY rank");
  q.bind(1, job);
  while (q.step()) {
    RankRecord r;
    r.job = job;
    r.rank = static_cast<int>(q.col_int(0));
    r.host = q.col_text(1);
    r.pid = q.col_int(2);
    r.session = q.col_text(3);
    r.generation = q.col_int(4);
    r.state = q.col_text(5);
    r.step = q.col_int(6);
    r.checkpoint_started = q.col_int(7);
    r.last_heartbeat = q.col_double(8);
    r.registered_at = q.col_double(9);
    r.reason = q.col_text(10);
    ranks.push_back(r);
  }
  return ranks;
}

std::vector<CheckpointRecord> ControllerStore::load_checkpoints(const std::string& job) {
  std::vector<CheckpointRecord> checkpoints;
  SqliteStmt q(db_,
               "SELECT step, state, trigger, generation, requested_at, committed_at, dir, error FROM checkpoints "
               "WHERE job = ? ORDER BY step");
  q.bind(1, job);
  while (q.step()) {
    CheckpointRecord c;
    c.job = job;
    c.step = q.col_int(0);
    c.state = q.col_text(1);
    c.trigger = q.col_text(2);
    c.generation = q.col_int(3);
    c.requested_at = q.col_double(4);
    c.committed_at = q.col_double(5);
    c.dir = q.col_text(6);
    c.error = q.col_text(7);
    checkpoints.push_back(c);
  }
  return checkpoints;
}

std::vector<AckRecord> ControllerStore::load_acks(const std::string& job, int64_t step) {
  std::vector<AckRecord> acks;
  SqliteStmt q(db_,
               "SELECT rank, ok, error, files, acked_at FROM checkpoint_acks WHERE job = ? AND step = ? ORDER BY rank");
  q.bind(1, job).bind(2, step);
  while (q.step()) {
    AckRecord a;
    a.job = job;
    a.step = step;
    a.rank = static_cast<int>(q.col_int(0));
    a.ok = q.col_int(1) != 0;
    a.error = q.col_text(2);
    a.files = files_from_json(q.col_text(3));
    a.acked_at = q.col_double(4);
    acks.push_back(a);
  }
  return acks;
}

std::vector<MetricRecord> ControllerStore::query_metrics(const std::string& job, const std::vector<std::string>& names,
                                                         int64_t since_step, int64_t limit) {
  if (limit > 0) {
    // The first step of the last `limit` distinct steps.
    std::string sql = "SELECT DISTINCT step FROM metrics WHERE job = ?";
    if (!names.empty()) {
      sql += " AND name IN (";
      for (size_t i = 0; i < names.size(); ++i) sql += i == 0 ? "?" : ",?";
      sql += ")";
    }
    sql += " ORDER BY step DESC LIMIT 1 OFFSET ?";
    SqliteStmt q(db_, sql);
    int index = 1;
    q.bind(index++, job);
    for (const std::string& n : names) q.bind(index++, n);
    q.bind(index, limit - 1);
    if (q.step()) since_step = std::max(since_step, q.col_int(0));
  }
  std::string sql = "SELECT step, rank, name, value, wall_time FROM metrics WHERE job = ? AND step >= ?";
  if (!names.empty()) {
    sql += " AND name IN (";
    for (size_t i = 0; i < names.size(); ++i) sql += i == 0 ? "?" : ",?";
    sql += ")";
  }
  sql += " ORDER BY step, name, rank";
  SqliteStmt q(db_, sql);
  int index = 1;
  q.bind(1, job).bind(2, since_step);
  index = 3;
  for (const std::string& n : names) q.bind(index++, n);
  std::vector<MetricRecord> points;
  while (q.step()) points.push_back({job, q.col_int(0), static_cast<int>(q.col_int(1)), q.col_text(2),
                                     q.col_double(3), q.col_double(4)});
  return points;
}

std::map<std::string, MetricRecord> ControllerStore::latest_metrics(const std::string& job) {
  std::map<std::string, MetricRecord> latest;
  // One row per name: the highest step (then the latest wall time).
  SqliteStmt q(db_,
               "SELECT m.step, m.rank, m.name, m.value, m.wall_time FROM metrics m "
               "JOIN (SELECT name, MAX(step) AS step FROM metrics WHERE job = ? GROUP BY name) last "
               "ON m.name = last.name AND m.step = last.step WHERE m.job = ? ORDER BY m.wall_time");
  q.bind(1, job).bind(2, job);
  while (q.step()) {
    MetricRecord r{job, q.col_int(0), static_cast<int>(q.col_int(1)), q.col_text(2), q.col_double(3), q.col_double(4)};
    latest[r.name] = r;
  }
  return latest;
}

}  // namespace rwkv::launch
