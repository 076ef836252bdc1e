#include "launch/controller_state.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "checkpoint/manifest.h"
#include "core/log.h"
#include "launch/checkpoint_commit.h"
#include "launch/flags.h"
#include "launch/tokens.h"

namespace rwkv::launch {

namespace {

using Code = RpcError::Code;

bool terminal(const std::string& job_state) {
  return job_state == "stopped" || job_state == "completed" || job_state == "failed";
}

bool open_state(const std::string& checkpoint_state) {
  return checkpoint_state == "requested" || checkpoint_state == "committing";
}

const char* outcome_name(FinishRequest::Outcome outcome) {
  switch (outcome) {
    case FinishRequest::COMPLETED: return "completed";
    case FinishRequest::STOPPED: return "stopped";
    default: return "failed";
  }
}

void fill_info(CheckpointInfo* info, const CheckpointRecord& c, int acks, int world_size) {
  info->set_step(c.step);
  info->set_state(c.state);
  info->set_trigger(c.trigger);
  info->set_requested_at(c.requested_at);
  info->set_committed_at(c.committed_at);
  info->set_dir(c.dir);
  info->set_error(c.error);
  info->set_acks(acks);
  info->set_world_size(world_size);
}

}  // namespace

Clock Clock::real() {
  return {[] { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); },
          [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }};
}

ControllerState::ControllerState(ControllerOptions options, Clock clock)
    : options_(std::move(options)), clock_(std::move(clock)), store_(options_.db_path) {
  load();
  commit_thread_ = std::thread([this] { commit_worker(); });
}

ControllerState::~ControllerState() {
  {
    std::lock_guard<std::mutex> lock(commit_mu_);
    stopping_ = true;
  }
  commit_cv_.notify_all();
  commit_thread_.join();
}

// ---------------------------------------------------------------- loading

void ControllerState::load() {
  const double now = clock_.steady();
  for (JobRecord& rec : store_.load_jobs()) {
    Job& job = jobs_[rec.id];
    job.rec = rec;
    job.ranks.resize(static_cast<size_t>(rec.world_size));
    for (int r = 0; r < rec.world_size; ++r) {
      job.ranks[static_cast<size_t>(r)].rec.job = rec.id;
      job.ranks[static_cast<size_t>(r)].rec.rank = r;
    }
    for (RankRecord& r : store_.load_ranks(rec.id))
      if (r.rank >= 0 && r.rank < rec.world_size) job.ranks[static_cast<size_t>(r.rank)].rec = r;
    // The controller was away: nobody could heartbeat, so every rank gets a
    // full timeout from now before it counts as failed.
    for (Rank& r : job.ranks) r.last_seen = now;
    job.open_since = now;  // and an open checkpoint a full timeout
    for (CheckpointRecord& c : store_.load_checkpoints(rec.id)) {
      job.checkpoints[c.step] = c;
      for (AckRecord& a : store_.load_acks(rec.id, c.step)) job.acks[c.step][a.rank] = a;
    }
    latest_job_ = rec.id;
    log_info("controller: loaded job ", rec.id, " (", rec.state, ", generation ", rec.generation, ", ",
             rec.world_size, " ranks, ", job.checkpoints.size(), " checkpoints)");
    // A commit the previous controller started finishes now (it is idempotent).
    for (auto& [step, c] : job.checkpoints) {
      if (c.state != "committing") continue;
      std::vector<AckRecord> acks;
      for (auto& [r, a] : job.acks[step]) acks.push_back(a);
      commit_queue_.push_back({rec.id, step, rec.checkpoint_dir, rec.world_size, acks});
    }
  }
}

// ---------------------------------------------------------------- helpers

ControllerState::Job& ControllerState::find_job(const std::string& id) {
  const std::string& key = id.empty() ? latest_job_ : id;
  auto it = jobs_.find(key);
  if (it == jobs_.end()) {
    if (id.empty()) throw RpcError(Code::NotFound, "the controller has no job yet (no rank has registered)");
    throw RpcError(Code::NotFound, str_cat("unknown job '", id, "'"));
  }
  return it->second;
}

ControllerState::Rank& ControllerState::find_rank(Job& job, int rank, const std::string& session) {
  if (rank < 0 || rank >= job.rec.world_size)
    throw RpcError(Code::InvalidArgument, str_cat("rank ", rank, " is outside job ", job.rec.id, " of ",
                                                  job.rec.world_size, " ranks"));
  // The caller compares sessions: a process whose session is not the rank's
  // current one (an older registration) is superseded, never an error.
  return job.ranks[static_cast<size_t>(rank)];
}

CheckpointRecord* ControllerState::open_checkpoint(Job& job) {
  for (auto& [step, c] : job.checkpoints)
    if (open_state(c.state)) return &c;
  return nullptr;
}

CheckpointRecord* ControllerState::requested_checkpoint(Job& job) {
  for (auto& [step, c] : job.checkpoints)
    if (c.state == "requested") return &c;
  return nullptr;
}

int64_t ControllerState::max_step(const Job& job) const {
  int64_t step = 0;
  for (const Rank& r : job.ranks)
    if (r.rec.generation == job.rec.generation && r.rec.state != "pending") step = std::max(step, r.rec.step);
  return step;
}

double ControllerState::steps_per_second(const Job& job) const {
  if (job.progress.size() < 2) return 0.0;
  const auto& [t0, s0] = job.progress.front();
  const auto& [t1, s1] = job.progress.back();
  return t1 > t0 && s1 > s0 ? static_cast<double>(s1 - s0) / (t1 - t0) : 0.0;
}

// Far enough ahead that every rank hears of the step before it gets there:
// two heartbeat periods of progress, and at least min_lead_steps.
int64_t ControllerState::lead_steps(const Job& job) const {
  const double per_heartbeat = steps_per_second(job) * job.rec.heartbeat_s;
  return std::max<int64_t>(options_.min_lead_steps, static_cast<int64_t>(std::ceil(2.0 * per_heartbeat)) + 1);
}

void ControllerState::save_job(Job& job) {
  job.rec.updated_at = clock_.wall();
  store_.save_job(job.rec);
}

void ControllerState::save_checkpoint(const CheckpointRecord& checkpoint) { store_.save_checkpoint(checkpoint); }

void ControllerState::write_metrics(Job& job, const std::vector<MetricRecord>& points) {
  store_.add_metrics(points);
  if (options_.tensorboard_dir.empty() || points.empty()) return;
  try {
    if (!job.tensorboard)
      job.tensorboard = std::make_unique<TensorBoardWriter>(
          (std::filesystem::path(options_.tensorboard_dir) / job.rec.id).string());
    for (const MetricRecord& p : points)
      job.tensorboard->add_scalar(p.rank == 0 ? p.name : str_cat("rank", p.rank, "/", p.name), p.step, p.value,
                                  p.wall_time);
    job.tensorboard->flush();
  } catch (const Error& e) {
    // Monitoring must not stop training: say so once and carry on without it.
    log_error("controller: TensorBoard output disabled: ", e.what());
    options_.tensorboard_dir.clear();
    job.tensorboard.reset();
  }
}

// ---------------------------------------------------------------- commands

Command ControllerState::command_for(const Job& job, const Rank& rank) const {
  Command cmd;
  auto stop_now = [&cmd](const std::string& why) {
    cmd.set_kind(Command::STOP);
    cmd.set_step(0);
    cmd.set_reason(why);
  };
  if (job.rec.state == "failed") {
    stop_now(job.rec.reason);
  } else if (rank.rec.state == "failed" || rank.rec.state == "finished") {
    stop_now(str_cat("rank ", rank.rec.rank, " is ", rank.rec.state, ": ", rank.rec.reason));
  } else if (job.rec.stop_step == 0) {
    stop_now(job.rec.reason.empty() ? "stop requested" : job.rec.reason);
  } else {
    for (const auto& [step, c] : job.checkpoints) {
      if (!open_state(c.state)) continue;
      auto acks = job.acks.find(step);
      const bool acked = acks != job.acks.end() && acks->second.count(rank.rec.rank) > 0;
      if (acked) continue;  // this rank's part is done (e.g. committing while the final one is requested)
      cmd.set_kind(job.rec.stop_step == step ? Command::STOP : Command::CHECKPOINT);
      cmd.set_step(step);
      cmd.set_reason(str_cat(c.trigger, " checkpoint"));
      return cmd;
    }
    if (job.rec.stop_step > 0 && rank.rec.checkpoint_started >= job.rec.stop_step)
      stop_now("the job is stopping and this rank wrote its last checkpoint");
  }
  return cmd;
}

// Opens a checkpoint request at `step`: the directory is prepared before any
// rank hears of it, so no rank can write into a directory about to be wiped.
bool ControllerState::request_at(Job& job, int64_t step, const std::string& trigger) {
  CheckpointRecord c;
  c.job = job.rec.id;
  c.step = step;
  c.trigger = trigger;
  c.generation = job.rec.generation;
  c.requested_at = clock_.wall();
  auto existing = job.checkpoints.find(step);
  if (existing != job.checkpoints.end() && existing->second.state == "committed") return false;
  job.acks.erase(step);
  store_.delete_acks(job.rec.id, step);  // acks of an earlier attempt at this step count for nothing
  try {
    prepare_partial_dir(job.rec.checkpoint_dir, step);
  } catch (const Error& e) {
    c.state = "aborted";
    c.error = e.what();
    job.checkpoints[step] = c;
    save_checkpoint(c);
    job.no_request_before = clock_.steady() + 10.0 * job.rec.heartbeat_s;
    log_error("controller: job ", job.rec.id, ": checkpoint at step ", step, " not possible: ", e.what());
    return false;
  }
  job.checkpoints[step] = c;
  save_checkpoint(c);
  job.open_since = clock_.steady();
  log_info("controller: job ", job.rec.id, ": ", trigger, " checkpoint requested at step ", step);
  return true;
}

void ControllerState::schedule_checkpoints(Job& job) {
  if (job.rec.state != "running" && job.rec.state != "stopping") return;
  if (job.rec.checkpoint_dir.empty() || job.rec.stop_step == 0) return;
  const int64_t at = max_step(job);
  if (CheckpointRecord* requested = requested_checkpoint(job)) {
    // A rank already past the step that never began the shard heard of the
    // request too late: this checkpoint can never be complete.
    for (const Rank& r : job.ranks) {
      const bool acked = job.acks[requested->step].count(r.rec.rank) > 0;
      if (r.rec.state == "alive" && r.rec.step > requested->step && r.rec.checkpoint_started < requested->step &&
          !acked) {
        abort_checkpoint(job, *requested, str_cat("rank ", r.rec.rank, " reached step ", r.rec.step,
                                                  " without writing its shard (it heard of the request too late)"));
        break;
      }
    }
  }
  // One checkpoint at a time, and none during the back-off after an abort,
  // but for the final one once a rank is at the last step: that rank waits
  // on this heartbeat's command and would otherwise finish without one (a
  // fast rank that ran past the last interval checkpoint, or one right
  // after it while it commits). It is still asked for at most once per
  // generation (below).
  const bool at_the_end = job.rec.total_steps > 0 && at == job.rec.total_steps;
  if (CheckpointRecord* open = open_checkpoint(job); open != nullptr && !(at_the_end && open->state == "committing" &&
                                                                          requested_checkpoint(job) == nullptr))
    return;
  const bool backing_off = clock_.steady() < job.no_request_before;
  const int64_t lead = lead_steps(job);
  int64_t target = -1;
  std::string trigger;
  if (job.rec.stop_step > 0) {
    auto last_stop = job.checkpoints.find(job.rec.stop_step);
    if (last_stop != job.checkpoints.end() && last_stop->second.state == "committed") return;  // done: ranks exit
    if (backing_off) return;
    // A graceful stop whose checkpoint was aborted: ask again further ahead.
    target = std::max(job.rec.stop_step + 1, at + lead);
    if (job.rec.total_steps > 0) target = std::min(target, job.rec.total_steps);
    trigger = "stop";
    job.rec.stop_step = target;
    save_job(job);
  } else {
    const int64_t interval = job.rec.checkpoint_interval;
    if (interval > 0) {
      target = (at / interval + 1) * interval;
      while (target < at + lead) target += interval;
      trigger = "interval";
    }
    if (job.rec.total_steps > 0 && (target < 0 || target >= job.rec.total_steps)) {
      target = job.rec.total_steps;
      trigger = "final";
    }
    if (backing_off && !at_the_end) return;  // at the end the target is the final step
  }
  if (target <= at && !(target == at && trigger == "final")) return;
  auto last = job.checkpoints.find(target);
  if (last != job.checkpoints.end() && last->second.generation == job.rec.generation) return;  // tried already
  request_at(job, target, trigger);
}

void ControllerState::abort_checkpoint(Job& job, CheckpointRecord& checkpoint, const std::string& why) {
  checkpoint.state = "aborted";
  checkpoint.error = why;
  save_checkpoint(checkpoint);
  job.no_request_before = clock_.steady() + job.rec.heartbeat_s;
  log_warn("controller: job ", job.rec.id, ": checkpoint at step ", checkpoint.step, " aborted, never committed: ", why);
}

void ControllerState::fail_job(Job& job, const std::string& why) {
  if (job.rec.state == "failed") return;
  job.rec.state = "failed";
  job.rec.reason = why;
  if (CheckpointRecord* open = requested_checkpoint(job)) abort_checkpoint(job, *open, "the job failed: " + why);
  save_job(job);
  log_error("controller: job ", job.rec.id, " failed: ", why, "; the other ranks are told to stop");
}

void ControllerState::maybe_finish_job(Job& job) {
  bool all_finished = true, all_completed = true;
  for (const Rank& r : job.ranks) {
    all_finished = all_finished && r.rec.state == "finished";
    all_completed = all_completed && r.rec.reason.rfind("completed", 0) == 0;
  }
  if (!all_finished || job.rec.state == "failed") return;
  job.rec.state = all_completed && job.rec.stop_step < 0 ? "completed" : "stopped";
  job.rec.reason = job.rec.state == "completed" ? "every rank trained every step" : "every rank stopped";
  save_job(job);
  log_info("controller: job ", job.rec.id, " ", job.rec.state);
}

void ControllerState::start_generation(Job& job, const RegisterRequest& request, const std::string& why) {
  const double now = clock_.steady();
  job.rec.generation += 1;
  job.rec.state = "running";
  job.rec.reason = why;
  job.rec.stop_step = -1;
  job.rec.world_size = request.world_size();
  job.rec.total_steps = request.total_steps();
  job.rec.config_digest = request.config_digest();
  job.rec.checkpoint_dir = request.checkpoint_dir();
  job.rec.checkpoint_interval = request.checkpoint_interval();
  job.rec.keep_last = request.keep_last();
  job.rec.keep_every = request.keep_every();
  job.rec.heartbeat_s = request.heartbeat_s() > 0 ? request.heartbeat_s() : options_.default_heartbeat_s;
  job.rec.heartbeat_timeout_s =
      request.heartbeat_timeout_s() > 0 ? request.heartbeat_timeout_s() : options_.default_heartbeat_timeout_s;
  for (auto& [step, c] : job.checkpoints)
    if (c.state == "requested") abort_checkpoint(job, c, "the job restarted (generation " +
                                                             std::to_string(job.rec.generation) + ")");
  save_job(job);  // first: ranks refer to it
  job.ranks.assign(static_cast<size_t>(request.world_size()), Rank{});
  for (int r = 0; r < request.world_size(); ++r) {
    Rank& rank = job.ranks[static_cast<size_t>(r)];
    rank.rec.job = job.rec.id;
    rank.rec.rank = r;
    rank.rec.generation = job.rec.generation;
    rank.rec.state = "pending";
    rank.last_seen = now;
    store_.save_rank(rank.rec);
  }
  job.progress.clear();
  job.no_request_before = 0;
}

// ---------------------------------------------------------------- worker calls

RegisterReply ControllerState::register_rank(const RegisterRequest& q) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_valid_job_name(q.job()))
    throw RpcError(Code::InvalidArgument, str_cat("job name '", q.job(), "' is not valid: use 1-64 letters, digits, ",
                                                  "'.', '_' or '-', starting with a letter or digit"));
  // A bound keeps a malformed request from allocating a rank table of
  // billions of entries; no job comes near it.
  constexpr int32_t kMaxWorldSize = 1 << 20;
  if (q.world_size() > kMaxWorldSize)
    throw RpcError(Code::InvalidArgument, str_cat("world_size ", q.world_size(), " is more than ", kMaxWorldSize,
                                                  " ranks: a malformed request?"));
  if (q.world_size() < 1 || q.rank() < 0 || q.rank() >= q.world_size())
    throw RpcError(Code::InvalidArgument, str_cat("rank ", q.rank(), " of world size ", q.world_size(),
                                                  ": expected 0 <= rank < world_size"));
  if (q.total_steps() < 0 || q.step() < 0 || q.checkpoint_interval() < 0 || q.keep_last() < 0 || q.keep_every() < 0)
    throw RpcError(Code::InvalidArgument,
                   "total_steps, step, checkpoint_interval, keep_last and keep_every must be >= 0");
  if (!q.checkpoint_dir().empty() && q.checkpoint_dir()[0] != '/')
    throw RpcError(Code::InvalidArgument, str_cat("checkpoint_dir '", q.checkpoint_dir(),
                                                  "' must be absolute: the controller runs in another directory"));
  const double wall = clock_.wall();
  SqliteTransaction tx(store_.db());
  auto [it, created] = jobs_.try_emplace(q.job());
  Job& job = it->second;
  if (created) {
    job.rec.id = q.job();
    job.rec.generation = 0;
    job.rec.created_at = wall;
    latest_job_ = q.job();
    start_generation(job, q, "created");
    log_info("controller: job ", q.job(), " created: ", q.world_size(), " ranks, ", q.total_steps(), " steps");
  } else {
    const bool joins = !terminal(job.rec.state) && q.rank() < job.rec.world_size &&
                       job.ranks[static_cast<size_t>(q.rank())].rec.state == "pending";
    if (!joins) {
      start_generation(job, q, str_cat("restarted: rank ", q.rank(), " registered again"));
      log_info("controller: job ", q.job(), " restarts as generation ", job.rec.generation, " (rank ", q.rank(),
               " registered again, at step ", q.step(), ")");
    }
  }
  // Every rank of a generation must run the same job.
  auto mismatch = [&](const char* what, const std::string& job_value, const std::string& rank_value) {
    if (job_value == rank_value) return;
    throw RpcError(Code::FailedPrecondition,
                   str_cat("rank ", q.rank(), " registered ", what, " '", rank_value, "' but job ", q.job(),
                           " has '", job_value, "' (from the first rank of generation ", job.rec.generation,
                           ")\n  ---> HINT: every rank must start with the same config file and overrides"));
  };
  mismatch("world size", std::to_string(job.rec.world_size), std::to_string(q.world_size()));
  mismatch("config digest", job.rec.config_digest, q.config_digest());
  mismatch("checkpoint dir", job.rec.checkpoint_dir, q.checkpoint_dir());

  Rank& rank = job.ranks[static_cast<size_t>(q.rank())];
  rank.rec.host = q.host();
  rank.rec.pid = q.pid();
  rank.rec.session = generate_token().substr(0, 16);
  rank.rec.generation = job.rec.generation;
  rank.rec.state = "alive";
  rank.rec.step = q.step();
  rank.rec.checkpoint_started = 0;
  rank.rec.last_heartbeat = wall;
  rank.rec.registered_at = wall;
  rank.rec.reason.clear();
  rank.last_seen = clock_.steady();
  store_.save_rank(rank.rec);
  schedule_checkpoints(job);
  tx.commit();
  log_info("controller: job ", q.job(), " rank ", q.rank(), "/", q.world_size(), " registered from ", q.host(),
           " pid ", q.pid(), " at step ", q.step(), " (generation ", job.rec.generation, ")");

  RegisterReply reply;
  reply.set_session(rank.rec.session);
  reply.set_generation(job.rec.generation);
  *reply.mutable_command() = command_for(job, rank);
  return reply;
}

HeartbeatReply ControllerState::heartbeat(const HeartbeatRequest& q) {
  std::lock_guard<std::mutex> lock(mu_);
  if (q.job().empty()) throw RpcError(Code::InvalidArgument, "heartbeat without a job name");
  Job& job = find_job(q.job());
  Rank& rank = find_rank(job, q.rank(), q.session());
  HeartbeatReply reply;
  if (rank.rec.session != q.session()) {
    // An older process of this rank: a newer one registered since.
    reply.mutable_command()->set_kind(Command::STOP);
    reply.mutable_command()->set_reason(str_cat("superseded: rank ", q.rank(), " registered again (pid ",
                                                rank.rec.pid, " on ", rank.rec.host, ")"));
    return reply;
  }
  SqliteTransaction tx(store_.db());
  const double wall = clock_.wall();
  const double now = clock_.steady();
  if (rank.rec.state == "alive") {
    rank.rec.step = q.step();
    rank.rec.checkpoint_started = std::max(rank.rec.checkpoint_started, q.checkpoint_started());
    rank.rec.last_heartbeat = wall;
    rank.last_seen = now;
    store_.save_rank(rank.rec);
    std::vector<MetricRecord> points;
    points.reserve(static_cast<size_t>(q.points_size()));
    for (const MetricPoint& p : q.points())
      points.push_back({job.rec.id, p.step(), q.rank(), p.name(), p.value(), p.wall_time() > 0 ? p.wall_time() : wall});
    write_metrics(job, points);
    const int64_t step = max_step(job);
    if (job.progress.empty() || job.progress.back().second != step) job.progress.emplace_back(now, step);
    while (job.progress.size() > 2 && (job.progress.size() > 64 || now - job.progress.front().first > 600))
      job.progress.pop_front();
    schedule_checkpoints(job);
  }
  tx.commit();
  *reply.mutable_command() = command_for(job, rank);
  return reply;
}

AckCheckpointReply ControllerState::ack_checkpoint(const AckCheckpointRequest& q) {
  std::lock_guard<std::mutex> lock(mu_);
  if (q.job().empty()) throw RpcError(Code::InvalidArgument, "checkpoint ack without a job name");
  Job& job = find_job(q.job());
  Rank& rank = find_rank(job, q.rank(), q.session());
  if (rank.rec.session != q.session())
    throw RpcError(Code::FailedPrecondition, str_cat("superseded: rank ", q.rank(), " registered again"));
  auto it = job.checkpoints.find(q.step());
  if (it == job.checkpoints.end())
    throw RpcError(Code::FailedPrecondition, str_cat("job ", job.rec.id, ": no checkpoint was requested at step ",
                                                     q.step(), "\n  ---> HINT: ranks write checkpoints when the ",
                                                     "controller's command says so (Command.step)"));
  CheckpointRecord& c = it->second;
  AckCheckpointReply reply;
  if (!open_state(c.state) || c.state == "committing") {
    reply.set_state(c.state);
    reply.set_message(c.state == "aborted" ? "checkpoint aborted: " + c.error : "checkpoint already " + c.state);
    return reply;
  }
  SqliteTransaction tx(store_.db());
  AckRecord ack;
  ack.job = job.rec.id;
  ack.step = q.step();
  ack.rank = q.rank();
  ack.ok = q.ok();
  ack.error = q.error();
  ack.acked_at = clock_.wall();
  for (const CheckpointFile& f : q.files()) ack.files.push_back({f.name(), f.bytes(), f.xxh3()});
  job.acks[q.step()][q.rank()] = ack;
  store_.save_ack(ack);
  rank.rec.checkpoint_started = std::max(rank.rec.checkpoint_started, q.step());
  store_.save_rank(rank.rec);
  log_info("controller: job ", job.rec.id, " rank ", q.rank(), (q.ok() ? " acked" : " FAILED"), " checkpoint step ",
           q.step(), " (", job.acks[q.step()].size(), "/", job.rec.world_size, ")", q.ok() ? "" : ": " + q.error());
  if (!q.ok()) {
    abort_checkpoint(job, c, str_cat("rank ", q.rank(), " could not write its shard: ", q.error()));
  } else if (static_cast<int>(job.acks[q.step()].size()) == job.rec.world_size) {
    c.state = "committing";
    save_checkpoint(c);
    std::vector<AckRecord> acks;
    for (auto& [r, a] : job.acks[q.step()]) acks.push_back(a);
    {
      std::lock_guard<std::mutex> commit_lock(commit_mu_);
      commit_queue_.push_back({job.rec.id, q.step(), job.rec.checkpoint_dir, job.rec.world_size, std::move(acks)});
    }
    commit_cv_.notify_all();
  }
  tx.commit();
  reply.set_state(c.state);
  reply.set_message(c.state == "aborted" ? "checkpoint aborted: " + c.error : "");
  return reply;
}

void ControllerState::finish(const FinishRequest& q) {
  std::lock_guard<std::mutex> lock(mu_);
  if (q.job().empty()) throw RpcError(Code::InvalidArgument, "finish without a job name");
  Job& job = find_job(q.job());
  Rank& rank = find_rank(job, q.rank(), q.session());
  if (rank.rec.session != q.session()) return;  // a superseded process: nothing of it counts
  SqliteTransaction tx(store_.db());
  rank.rec.state = "finished";
  rank.rec.step = std::max(rank.rec.step, q.step());
  rank.rec.reason = outcome_name(q.outcome());
  if (!q.message().empty()) rank.rec.reason += ": " + q.message();
  store_.save_rank(rank.rec);
  log_info("controller: job ", job.rec.id, " rank ", q.rank(), " finished at step ", q.step(), " (", rank.rec.reason, ")");
  if (q.outcome() == FinishRequest::FAILED) {
    fail_job(job, str_cat("rank ", q.rank(), " on ", rank.rec.host, " failed at step ", q.step(), ": ", q.message()));
  } else if (CheckpointRecord* open = requested_checkpoint(job);
             open != nullptr && job.acks[open->step].count(q.rank()) == 0) {
    abort_checkpoint(job, *open, str_cat("rank ", q.rank(), " finished without writing its shard"));
  }
  maybe_finish_job(job);
  tx.commit();
}

// ---------------------------------------------------------------- failure detection

void ControllerState::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const double now = clock_.steady();
  for (auto& [id, job] : jobs_) {
    if (job.rec.state != "running" && job.rec.state != "stopping") continue;
    SqliteTransaction tx(store_.db());
    for (Rank& r : job.ranks) {
      if (r.rec.state != "alive" && r.rec.state != "pending") continue;
      const double silent = now - r.last_seen;
      if (silent <= job.rec.heartbeat_timeout_s) continue;
      const std::string why =
          r.rec.state == "pending"
              ? str_cat("rank ", r.rec.rank, " did not register within ", job.rec.heartbeat_timeout_s, " s")
              : str_cat("rank ", r.rec.rank, " (", r.rec.host, " pid ", r.rec.pid, ") sent no heartbeat for ",
                        static_cast<int64_t>(silent), " s (timeout ", job.rec.heartbeat_timeout_s, " s, last step ",
                        r.rec.step, "): dead or hung");
      r.rec.state = "failed";
      r.rec.reason = why;
      store_.save_rank(r.rec);
      // Ranks that wait in a collective for a hung one fall silent too, and
      // the first to time out need not be the culprit: name the others.
      std::string also;
      for (const Rank& o : job.ranks)
        if (&o != &r && o.rec.state == "alive" && now - o.last_seen > job.rec.heartbeat_timeout_s / 2)
          also += str_cat(also.empty() ? "" : ", ", "rank ", o.rec.rank, " (pid ", o.rec.pid, ", last step ",
                          o.rec.step, ") for ", static_cast<int64_t>(now - o.last_seen), " s");
      fail_job(job, also.empty() ? why : str_cat(why, "; also silent: ", also));
    }
    CheckpointRecord* open = requested_checkpoint(job);
    if (open != nullptr && now - job.open_since > options_.checkpoint_timeout_s) {
      std::string missing;
      for (int r = 0; r < job.rec.world_size; ++r)
        if (job.acks[open->step].count(r) == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      abort_checkpoint(job, *open, str_cat("not acknowledged within ", options_.checkpoint_timeout_s,
                                           " s (missing ranks: ", missing, ")"));
    }
    tx.commit();
  }
}

// ---------------------------------------------------------------- commits

void ControllerState::commit_worker() {
  for (;;) {
    CommitTask task;
    {
      std::unique_lock<std::mutex> lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return stopping_ || !commit_queue_.empty(); });
      if (commit_queue_.empty()) return;  // stopping, nothing left
      task = std::move(commit_queue_.front());
      commit_queue_.pop_front();
      ++commits_running_;
    }
    if (options_.before_commit) options_.before_commit(task.step);
    const CommitResult result =
        commit_checkpoint(task.dir, task.step, task.world_size, task.acks, options_.verify_hashes);
    try {
      record_commit(task, result.ok, result.dir, result.error);
    } catch (const std::exception& e) {
      log_error("controller: recording the commit of step ", task.step, " failed: ", e.what());
    }
    {
      std::lock_guard<std::mutex> lock(commit_mu_);
      --commits_running_;
    }
    commit_cv_.notify_all();
  }
}

void ControllerState::record_commit(const CommitTask& task, bool ok, const std::string& dir, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = jobs_.at(task.job);
  CheckpointRecord& c = job.checkpoints.at(task.step);
  SqliteTransaction tx(store_.db());
  if (ok) {
    c.state = "committed";
    c.dir = dir;
    c.committed_at = clock_.wall();
    c.error.clear();
    save_checkpoint(c);
    log_info("controller: job ", job.rec.id, ": checkpoint step ", task.step, " committed at ", dir, " (",
             task.world_size, " ranks acked)");
    remove_stale_checkpoint_dirs(task.dir, task.step);
    apply_retention(job);
  } else {
    abort_checkpoint(job, c, error);
  }
  schedule_checkpoints(job);  // announce the next one now, not a heartbeat later
  tx.commit();
}

// As CheckpointStore::apply_retention: the newest keep_last committed
// checkpoints stay, and older ones whose step is a multiple of keep_every.
// The marker goes first, so a half-removed directory is merely uncommitted.
void ControllerState::apply_retention(Job& job) {
  if (job.rec.keep_last <= 0) return;
  std::vector<CheckpointRecord*> committed;
  for (auto& [step, c] : job.checkpoints)
    if (c.state == "committed") committed.push_back(&c);
  const size_t keep = static_cast<size_t>(job.rec.keep_last);
  for (size_t i = 0; i + keep < committed.size(); ++i) {
    CheckpointRecord& c = *committed[i];
    if (job.rec.keep_every > 0 && c.step % job.rec.keep_every == 0) continue;
    std::error_code ec;
    std::filesystem::remove(std::filesystem::path(c.dir) / checkpoint::kCommitMarker, ec);
    std::filesystem::remove_all(c.dir, ec);
    if (ec) log_warn("controller: ", c.dir, ": cannot remove the old checkpoint: ", ec.message());
    c.state = "removed";
    save_checkpoint(c);
    log_info("controller: job ", job.rec.id, ": checkpoint step ", c.step, " removed (keep_last ", job.rec.keep_last,
             job.rec.keep_every > 0 ? str_cat(", keep_every ", job.rec.keep_every) : std::string(), ")");
  }
}

void ControllerState::wait_for_commits() {
  std::unique_lock<std::mutex> lock(commit_mu_);
  commit_cv_.wait(lock, [this] { return commit_queue_.empty() && commits_running_ == 0; });
}

// ---------------------------------------------------------------- admin

StatusReply ControllerState::status(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = find_job(id);
  const double now = clock_.steady();
  StatusReply s;
  s.set_job(job.rec.id);
  s.set_state(job.rec.state);
  s.set_reason(job.rec.reason);
  s.set_generation(job.rec.generation);
  s.set_step(max_step(job));
  s.set_total_steps(job.rec.total_steps);
  s.set_world_size(job.rec.world_size);
  s.set_config_digest(job.rec.config_digest);
  s.set_created_at(job.rec.created_at);
  int alive = 0;
  for (const Rank& r : job.ranks) {
    RankStatus* rs = s.add_ranks();
    rs->set_rank(r.rec.rank);
    rs->set_host(r.rec.host);
    rs->set_pid(r.rec.pid);
    rs->set_state(r.rec.state);
    rs->set_step(r.rec.step);
    rs->set_heartbeat_age_s(r.rec.state == "alive" ? now - r.last_seen : -1.0);
    rs->set_reason(r.rec.reason);
    alive += r.rec.state == "alive" ? 1 : 0;
  }
  s.set_ranks_alive(alive);
  const std::map<std::string, MetricRecord> latest = store_.latest_metrics(job.rec.id);
  if (auto it = latest.find("loss"); it != latest.end()) {
    s.set_has_loss(true);
    s.set_loss(it->second.value);
  }
  if (auto it = latest.find("tokens_per_s"); it != latest.end()) s.set_tokens_per_s(it->second.value);
  const double rate = steps_per_second(job);
  s.set_eta_s(rate > 0 && job.rec.total_steps > 0 && job.rec.state == "running"
                  ? static_cast<double>(std::max<int64_t>(0, job.rec.total_steps - s.step())) / rate
                  : -1.0);
  for (auto it = job.checkpoints.rbegin(); it != job.checkpoints.rend(); ++it) {
    if (it->second.state != "committed") continue;
    s.set_has_committed(true);
    fill_info(s.mutable_last_committed(), it->second, static_cast<int>(job.acks[it->first].size()), job.rec.world_size);
    break;
  }
  return s;
}

MetricsReply ControllerState::metrics(const MetricsRequest& q) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = find_job(q.job());
  MetricsReply reply;
  const std::vector<std::string> names(q.names().begin(), q.names().end());
  for (const MetricRecord& m : store_.query_metrics(job.rec.id, names, q.since_step(), q.limit())) {
    MetricPoint* p = reply.add_points();
    p->set_step(m.step);
    p->set_name(m.name);
    p->set_value(m.value);
    p->set_wall_time(m.wall_time);
    p->set_rank(m.rank);
  }
  return reply;
}

CheckpointsReply ControllerState::checkpoints(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = find_job(id);
  CheckpointsReply reply;
  for (const auto& [step, c] : job.checkpoints)
    fill_info(reply.add_checkpoints(), c, static_cast<int>(job.acks[step].size()), job.rec.world_size);
  return reply;
}

RequestCheckpointReply ControllerState::request_checkpoint(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = find_job(id);
  if (job.rec.state != "running")
    throw RpcError(Code::FailedPrecondition, str_cat("job ", job.rec.id, " is ", job.rec.state, " (", job.rec.reason,
                                                     "): only a running job can write a checkpoint"));
  if (job.rec.checkpoint_dir.empty())
    throw RpcError(Code::FailedPrecondition, str_cat("job ", job.rec.id, " registered no checkpoint directory"));
  RequestCheckpointReply reply;
  const int64_t at = max_step(job);
  int64_t target = at + lead_steps(job);
  if (job.rec.total_steps > 0) target = std::min(target, job.rec.total_steps);
  CheckpointRecord* open = open_checkpoint(job);
  if (open != nullptr && (open->state == "committing" || open->step <= target)) {
    reply.set_step(open->step);
    reply.set_message(str_cat("a checkpoint at step ", open->step, " is already ", open->state));
    return reply;
  }
  if (target <= at)
    throw RpcError(Code::FailedPrecondition, str_cat("job ", job.rec.id, " is at its last step (", at, ")"));
  SqliteTransaction tx(store_.db());
  if (open != nullptr) {
    // Asked for now, while the next one is far ahead: no rank has reached
    // that step, so nothing is lost by asking for it again later.
    abort_checkpoint(job, *open, str_cat("replaced by a checkpoint asked for at step ", target));
    job.no_request_before = 0;
  }
  const bool requested = request_at(job, target, "command");
  tx.commit();
  if (!requested)
    throw RpcError(Code::FailedPrecondition, str_cat("cannot checkpoint at step ", target, ": ",
                                                     job.checkpoints[target].error));
  reply.set_step(target);
  reply.set_message(str_cat("checkpoint requested at step ", target, " (now at step ", at, ")"));
  return reply;
}

StopReply ControllerState::stop(const std::string& id, bool now) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& job = find_job(id);
  if (terminal(job.rec.state))
    throw RpcError(Code::FailedPrecondition, str_cat("job ", job.rec.id, " is already ", job.rec.state));
  SqliteTransaction tx(store_.db());
  StopReply reply;
  job.rec.state = "stopping";
  if (now || job.rec.checkpoint_dir.empty()) {
    job.rec.stop_step = 0;
    job.rec.reason = "stop requested (now, without a checkpoint)";
    if (CheckpointRecord* open = requested_checkpoint(job)) abort_checkpoint(job, *open, "the job was stopped");
    reply.set_message("stopping now, without a checkpoint");
  } else {
    // The open checkpoint becomes the last one when it is near; one far
    // ahead (the final one, say) gives way to one as soon as possible.
    const int64_t at = max_step(job);
    int64_t target = at + lead_steps(job);
    if (job.rec.total_steps > 0) target = std::min(target, std::max(job.rec.total_steps, at));
    CheckpointRecord* open = requested_checkpoint(job);  // the latest open one
    if (open == nullptr) open = open_checkpoint(job);
    if (open != nullptr && open->state == "requested" && open->step > target) {
      abort_checkpoint(job, *open, str_cat("replaced by the stop checkpoint at step ", target));
      open = nullptr;
    }
    if (open != nullptr) {
      job.rec.stop_step = open->step;
    } else {
      job.rec.stop_step = target;
      if (!request_at(job, target, "stop")) {
        job.rec.stop_step = 0;
        job.rec.reason = "stop requested; the final checkpoint was not possible";
      }
    }
    if (job.rec.stop_step > 0) job.rec.reason = str_cat("stop requested after the checkpoint at step ", job.rec.stop_step);
    reply.set_message(job.rec.reason);
  }
  reply.set_step(job.rec.stop_step);
  save_job(job);
  tx.commit();
  log_info("controller: job ", job.rec.id, ": ", job.rec.reason);
  return reply;
}

std::vector<std::string> ControllerState::job_ids() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, job] : jobs_) ids.push_back(id);
  return ids;
}

std::map<std::string, MetricRecord> ControllerState::latest_metrics(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.latest_metrics(find_job(job).rec.id);
}

}  // namespace rwkv::launch
