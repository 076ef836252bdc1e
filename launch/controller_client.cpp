#include "launch/controller_client.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "checkpoint/manifest.h"
#include "core/error.h"
#include "core/log.h"
#include "launch/controller.grpc.pb.h"
#include "launch/flags.h"
#include "launch/grpc_util.h"
#include "launch/tokens.h"

namespace rwkv::launch {

namespace {

constexpr size_t kMaxBufferedPoints = 100000;

double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Test hook (tests/launch/test_chaos.cpp), never set in a real job:
// RWKV_TEST_STALL_BEFORE_ACK=R:S stops rank R between writing its shard of
// the first checkpoint at a step >= S and acknowledging it, on the first
// attempt only (RWKV_ATTEMPT unset or 1), so that a test can kill the rank
// exactly there. It stalls for at most 10 minutes, then goes on.
void maybe_stall_before_ack(int rank, int64_t step) {
  const std::string hook = env_or_empty("RWKV_TEST_STALL_BEFORE_ACK");
  if (hook.empty()) return;
  const std::string attempt = env_or_empty("RWKV_ATTEMPT");
  if (!attempt.empty() && attempt != "1") return;
  int hook_rank = -1;
  long long hook_step = 0;
  if (std::sscanf(hook.c_str(), "%d:%lld", &hook_rank, &hook_step) != 2 || hook_rank != rank || step < hook_step) return;
  static bool stalled = false;  // only the first such checkpoint
  if (stalled) return;
  stalled = true;
  log_warn("controller: RWKV_TEST_STALL_BEFORE_ACK: rank ", rank, " stalls before acking checkpoint step ", step);
  std::this_thread::sleep_for(std::chrono::minutes(10));
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ControllerCommand to_command(const Command& c) {
  ControllerCommand out;
  out.kind = c.kind() == Command::CHECKPOINT ? ControllerCommand::Kind::Checkpoint
             : c.kind() == Command::STOP     ? ControllerCommand::Kind::Stop
                                             : ControllerCommand::Kind::None;
  out.step = c.step();
  out.reason = c.reason();
  return out;
}

}  // namespace

struct ControllerClient::Impl {
  std::unique_ptr<Worker::Stub> stub;
  Command command;                   // the last command the controller sent
  std::vector<MetricPoint> pending;  // metrics not yet delivered
  int64_t checkpoint_started = 0;    // latest step whose shard this rank began
  double last_attempt = -1e300;      // steady time of the last heartbeat RPC
  double last_contact = 0;           // steady time of the last successful RPC
  bool outage_logged = false;

  // A context with the token and a deadline.
  std::unique_ptr<grpc::ClientContext> context(const ClientOptions& o, double timeout_s) const {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata(kTokenMetadataKey, o.token);
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           std::chrono::duration<double>(timeout_s)));
    return c;
  }
};

ClientOptions client_options_from_env(int rank, int world_size) {
  ClientOptions o;
  o.rank = rank;
  o.world_size = world_size;
  o.address = env_or_empty("RWKV_CONTROLLER");
  o.job = env_or_empty("RWKV_JOB");
  o.token = env_or_empty("RWKV_JOB_TOKEN");
  o.tls_ca_file = env_or_empty("RWKV_TLS_CA");
  if (o.token.empty() && !env_or_empty("RWKV_JOB_TOKEN_FILE").empty())
    o.token = read_token_file(env_or_empty("RWKV_JOB_TOKEN_FILE"));
  RWKV_CHECK(!o.address.empty(), "RWKV_CONTROLLER is not set: the controller's host:port is unknown",
             "\n  ---> HINT: start the job with rwkv-launch, or set controller.address in the config");
  RWKV_CHECK(!o.job.empty(), "RWKV_JOB is not set: the job name is unknown\n  ---> HINT: start the job with rwkv-launch");
  RWKV_CHECK(!o.token.empty(), "neither RWKV_JOB_TOKEN nor RWKV_JOB_TOKEN_FILE is set: the controller refuses calls ",
             "without the job token\n  ---> HINT: start the job with rwkv-launch, or set controller.token_file");
  return o;
}

ShardFile describe_file(const std::string& dir, const std::string& name) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  std::error_code ec;
  const uint64_t bytes = std::filesystem::file_size(path, ec);
  RWKV_CHECK(!ec, path, ": cannot describe the checkpoint file: ", ec.message());
  return {name, bytes, checkpoint::file_xxh3(path)};
}

ControllerClient::ControllerClient(ClientOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  RWKV_CHECK(!options_.address.empty(), "controller client: no controller address\n  ---> HINT: set RWKV_CONTROLLER=host:port");
  RWKV_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
             "controller client: rank ", options_.rank, " of world size ", options_.world_size,
             ": expected 0 <= rank < world size");
  RWKV_CHECK(options_.heartbeat_s > 0 && options_.unreachable_timeout_s > 0 && options_.rpc_timeout_s > 0,
             "controller client: heartbeat_s, unreachable_timeout_s and rpc_timeout_s must be > 0");
  impl_->stub = Worker::NewStub(make_channel(options_.address, options_.tls_ca_file));
}

ControllerClient::~ControllerClient() = default;

ControllerCommand ControllerClient::register_rank(const RankInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  info_ = info;
  if (!info_.checkpoint_dir.empty())
    info_.checkpoint_dir = std::filesystem::absolute(info_.checkpoint_dir).lexically_normal().string();
  return do_register(info_.start_step);
}

ControllerCommand ControllerClient::do_register(int64_t start_step) {
  RegisterRequest q;
  q.set_job(options_.job);
  q.set_rank(options_.rank);
  q.set_world_size(options_.world_size);
  char host[256] = "unknown";
  ::gethostname(host, sizeof host - 1);
  q.set_host(host);
  q.set_pid(::getpid());
  q.set_config_digest(info_.config_digest);
  q.set_total_steps(info_.total_steps);
  q.set_step(start_step);
  q.set_checkpoint_dir(info_.checkpoint_dir);
  q.set_checkpoint_interval(info_.checkpoint_interval);
  q.set_heartbeat_s(options_.heartbeat_s);
  q.set_heartbeat_timeout_s(info_.heartbeat_timeout_s);
  q.set_keep_last(info_.keep_last);
  q.set_keep_every(info_.keep_every);

  const double start = steady_now();
  double backoff = 0.1;
  bool waiting_logged = false;
  for (;;) {
    RegisterReply reply;
    auto context = impl_->context(options_, options_.rpc_timeout_s);
    const grpc::Status status = impl_->stub->Register(context.get(), q, &reply);
    if (status.ok()) {
      session_ = reply.session();
      generation_ = reply.generation();
      registered_ = true;
      impl_->command = reply.command();
      impl_->checkpoint_started = 0;
      impl_->last_contact = impl_->last_attempt = steady_now();
      impl_->outage_logged = false;
      log_info("controller: rank ", options_.rank, " registered with ", options_.address, " (job ", options_.job,
               ", generation ", generation_, ")");
      return to_command(impl_->command);
    }
    const double waited = steady_now() - start;
    if (!is_transient(status) || waited >= options_.unreachable_timeout_s)
      RWKV_FAIL(describe_failure(str_cat("rank ", options_.rank, " cannot register with job ", options_.job), options_.address,
                                 status),
                is_transient(status) ? str_cat(" (tried for ", static_cast<int64_t>(waited), " s)") : "");
    if (!waiting_logged) {
      log_info("controller: waiting for ", options_.address, " (", status.error_message(), ")");
      waiting_logged = true;
    }
    // The rank waits on this call: retrying twice a second costs nothing
    // and finds a restarted controller at once.
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
    backoff = std::min(backoff * 2, 0.5);
  }
}

ControllerCommand ControllerClient::heartbeat(int64_t step, const std::map<std::string, double>& metrics, bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  RWKV_CHECK(registered_, "controller client: heartbeat before register_rank\n  ---> HINT: call register_rank first");
  Impl& s = *impl_;
  const double wall = wall_now();
  for (const auto& [name, value] : metrics) {
    MetricPoint p;
    p.set_step(step);
    p.set_name(name);
    p.set_value(value);
    p.set_wall_time(wall);
    s.pending.push_back(std::move(p));
  }
  if (s.pending.size() > kMaxBufferedPoints) {
    const size_t drop = s.pending.size() - kMaxBufferedPoints;
    s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(drop));
    log_warn("controller: dropped the ", drop, " oldest metric points while the controller is away");
  }
  const double now = steady_now();
  if (force || now - s.last_attempt >= options_.heartbeat_s) {
    s.last_attempt = now;
    HeartbeatRequest q;
    q.set_job(options_.job);
    q.set_rank(options_.rank);
    q.set_session(session_);
    q.set_step(step);
    q.set_checkpoint_started(s.checkpoint_started);
    for (const MetricPoint& p : s.pending) *q.add_points() = p;
    HeartbeatReply reply;
    // A short deadline: a hung controller must not stall training for long.
    auto context = s.context(options_, std::min(options_.rpc_timeout_s, std::max(1.0, options_.heartbeat_s)));
    const grpc::Status status = s.stub->Heartbeat(context.get(), q, &reply);
    if (status.ok()) {
      s.command = reply.command();
      s.pending.clear();
      s.last_contact = now;
      if (s.outage_logged) log_info("controller: ", options_.address, " reachable again");
      s.outage_logged = false;
    } else if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      // The controller does not know this job (it lost its database): join
      // again as a fresh registration at the current step.
      log_warn("controller: ", options_.address, " does not know job ", options_.job, "; registering again");
      do_register(step);
    } else if (is_transient(status) || status.error_code() == grpc::StatusCode::INTERNAL) {
      // Away, or in trouble (its disk, say): training goes on either way.
      if (!s.outage_logged) {
        log_warn(describe_failure("heartbeat", options_.address, status), "\n  training goes on; retrying every ",
                 options_.heartbeat_s, " s for up to ", options_.unreachable_timeout_s, " s");
        s.outage_logged = true;
      }
      const double away = now - s.last_contact;
      if (away >= options_.unreachable_timeout_s)
        RWKV_FAIL(describe_failure(str_cat("rank ", options_.rank, " lost the controller"), options_.address, status),
                  " (no answer for ", static_cast<int64_t>(away), " s, limit ", options_.unreachable_timeout_s, " s)");
    } else {
      RWKV_FAIL(describe_failure(str_cat("rank ", options_.rank, " heartbeat"), options_.address, status));
    }
  }
  ControllerCommand cmd = to_command(s.command);
  // The trainer writes the shard when told at this very step: from now on
  // the controller must not treat this rank as having missed the request.
  if (cmd.checkpoint_at(step)) s.checkpoint_started = std::max(s.checkpoint_started, step);
  return cmd;
}

std::string ControllerClient::ack(int64_t step, bool ok, const std::string& error, const std::vector<ShardFile>& files) {
  std::lock_guard<std::mutex> lock(mu_);
  RWKV_CHECK(registered_, "controller client: checkpoint ack before register_rank");
  AckCheckpointRequest q;
  q.set_job(options_.job);
  q.set_rank(options_.rank);
  q.set_session(session_);
  q.set_step(step);
  q.set_ok(ok);
  q.set_error(error);
  if (ok) maybe_stall_before_ack(options_.rank, step);
  for (const ShardFile& f : files) {
    CheckpointFile* out = q.add_files();
    out->set_name(f.name);
    out->set_bytes(f.bytes);
    out->set_xxh3(f.xxh3);
  }
  const double start = steady_now();
  double backoff = 0.1;
  for (;;) {
    AckCheckpointReply reply;
    auto context = impl_->context(options_, options_.rpc_timeout_s);
    const grpc::Status status = impl_->stub->AckCheckpoint(context.get(), q, &reply);
    if (status.ok()) {
      impl_->last_contact = steady_now();
      impl_->checkpoint_started = std::max(impl_->checkpoint_started, step);
      if (reply.state() == "aborted") log_warn("controller: checkpoint step ", step, ": ", reply.message());
      return reply.state();
    }
    const double waited = steady_now() - start;
    if (!is_transient(status) || waited >= options_.unreachable_timeout_s)
      RWKV_FAIL(describe_failure(str_cat("rank ", options_.rank, " checkpoint ack for step ", step), options_.address,
                                 status));
    // The rank waits on this call: retrying twice a second costs nothing
    // and finds a restarted controller at once.
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
    backoff = std::min(backoff * 2, 0.5);
  }
}

std::string ControllerClient::ack_checkpoint(int64_t step, const std::vector<ShardFile>& files) {
  return ack(step, true, "", files);
}

void ControllerClient::fail_checkpoint(int64_t step, const std::string& error) { ack(step, false, error, {}); }

void ControllerClient::finish(Outcome outcome, int64_t step, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!registered_) return;
  FinishRequest q;
  q.set_job(options_.job);
  q.set_rank(options_.rank);
  q.set_session(session_);
  q.set_outcome(outcome == Outcome::Completed ? FinishRequest::COMPLETED
                : outcome == Outcome::Stopped ? FinishRequest::STOPPED
                                              : FinishRequest::FAILED);
  q.set_message(message);
  q.set_step(step);
  for (int attempt = 0; attempt < 3; ++attempt) {
    FinishReply reply;
    auto context = impl_->context(options_, std::min(options_.rpc_timeout_s, 5.0));
    const grpc::Status status = impl_->stub->Finish(context.get(), q, &reply);
    if (status.ok()) return;
    if (!is_transient(status) || attempt == 2) {
      log_warn(describe_failure("finish", options_.address, status));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

}  // namespace rwkv::launch
