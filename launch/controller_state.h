// The controller's state machine, without any networking: registration,
// heartbeats and failure detection, checkpoint scheduling and commits, the
// end of ranks and jobs, and the read side (status, metrics, checkpoints).
// controller_service.cpp puts gRPC in front of it; tests drive it directly.
//
// One mutex guards everything; every change is written through to the
// ControllerStore before a reply leaves, so a restarted controller resumes
// exactly here. Checkpoint commits (which may hash large files) run on a
// worker thread outside the mutex so heartbeats never wait on disk.
//
// Job:   running -> stopping (Stop) -> stopped          (every rank finished)
//        running -> completed                           (every rank trained every step)
//        running|stopping -> failed                     (a rank missed heartbeats or finished FAILED)
//        any -> running, generation + 1                 (a rank registers again: a restart)
// Rank:  pending -> alive -> finished | failed          (per generation)
// Checkpoint: requested -> committing -> committed | aborted; committed -> removed (retention)
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "launch/controller.pb.h"
#include "launch/controller_store.h"
#include "launch/tensorboard_writer.h"

namespace rwkv::launch {

// An error a caller caused; the service turns it into a gRPC status.
class RpcError : public Error {
 public:
  enum class Code { InvalidArgument, NotFound, FailedPrecondition };
  RpcError(Code code, const std::string& message) : Error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct Clock {
  std::function<double()> wall;    // seconds since the epoch: stored times
  std::function<double()> steady;  // monotonic seconds: timeouts
  static Clock real();
};

struct ControllerOptions {
  std::string db_path = "controller.db";
  std::string tensorboard_dir;          // "": no event files; else <dir>/<job>/events.out.tfevents.*
  double default_heartbeat_s = 5.0;     // when a rank registers with 0
  double default_heartbeat_timeout_s = 60.0;
  double checkpoint_timeout_s = 1800.0; // a checkpoint not acked by every rank in this time is aborted
  bool verify_hashes = false;           // recompute every shard's XXH3 before a commit
  int64_t min_lead_steps = 2;           // a checkpoint asked for now is placed at least this far ahead
  // Tests: called on the commit thread before each commit's verification
  // (a test holds a checkpoint in "committing" by blocking here).
  std::function<void(int64_t step)> before_commit;
};

class ControllerState {
 public:
  explicit ControllerState(ControllerOptions options, Clock clock = Clock::real());
  ~ControllerState();  // finishes queued commits
  ControllerState(const ControllerState&) = delete;
  ControllerState& operator=(const ControllerState&) = delete;

  // Worker calls.
  RegisterReply register_rank(const RegisterRequest& request);
  HeartbeatReply heartbeat(const HeartbeatRequest& request);
  AckCheckpointReply ack_checkpoint(const AckCheckpointRequest& request);
  void finish(const FinishRequest& request);

  // Admin calls; job "" means the most recently created job.
  StatusReply status(const std::string& job);
  MetricsReply metrics(const MetricsRequest& request);
  CheckpointsReply checkpoints(const std::string& job);
  RequestCheckpointReply request_checkpoint(const std::string& job);
  StopReply stop(const std::string& job, bool now);

  // Failure detection and checkpoint timeouts; the server calls it a few
  // times per second.
  void tick();
  // Blocks until queued commits are done (tests).
  void wait_for_commits();

  // Monitoring.
  std::vector<std::string> job_ids();
  std::map<std::string, MetricRecord> latest_metrics(const std::string& job);
  std::atomic<int64_t> refused_calls{0};

 private:
  struct Rank {
    RankRecord rec;
    double last_seen = 0;  // steady clock
  };
  struct Job {
    JobRecord rec;
    std::vector<Rank> ranks;
    std::map<int64_t, CheckpointRecord> checkpoints;
    std::map<int64_t, std::map<int, AckRecord>> acks;
    std::deque<std::pair<double, int64_t>> progress;  // (steady time, step) for the rate and ETA
    double no_request_before = 0;                     // steady; back-off after an abort
    double open_since = 0;                            // steady; when the open checkpoint was asked for
    std::unique_ptr<TensorBoardWriter> tensorboard;
  };
  struct CommitTask {
    std::string job;
    int64_t step;
    std::string dir;
    int world_size;
    std::vector<AckRecord> acks;
  };

  void load();
  Job& find_job(const std::string& id);      // "" = the latest; throws NotFound
  Rank& find_rank(Job& job, int rank, const std::string& session);
  void start_generation(Job& job, const RegisterRequest& request, const std::string& why);
  Command command_for(const Job& job, const Rank& rank) const;
  CheckpointRecord* open_checkpoint(Job& job);  // the earliest requested or committing
  // The one waiting for acks (at most one: a new request waits until the
  // open one is committed or aborted, but for the final checkpoint, which
  // may be asked for while an earlier one is committing).
  CheckpointRecord* requested_checkpoint(Job& job);
  void schedule_checkpoints(Job& job);
  bool request_at(Job& job, int64_t step, const std::string& trigger);
  void abort_checkpoint(Job& job, CheckpointRecord& checkpoint, const std::string& why);
  void fail_job(Job& job, const std::string& why);
  void maybe_finish_job(Job& job);
  int64_t max_step(const Job& job) const;
  double steps_per_second(const Job& job) const;
  int64_t lead_steps(const Job& job) const;
  void write_metrics(Job& job, const std::vector<MetricRecord>& points);
  void save_job(Job& job);
  void save_checkpoint(const CheckpointRecord& checkpoint);
  void commit_worker();
  void record_commit(const CommitTask& task, bool ok, const std::string& dir, const std::string& error);
  void apply_retention(Job& job);

  ControllerOptions options_;
  Clock clock_;
  std::mutex mu_;
  ControllerStore store_;
  std::map<std::string, Job> jobs_;
  std::string latest_job_;

  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::deque<CommitTask> commit_queue_;
  int commits_running_ = 0;
  bool stopping_ = false;
  std::thread commit_thread_;
};

}  // namespace rwkv::launch
