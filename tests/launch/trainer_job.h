// A real rwkv-train job for the chaos tests: rwkv-launch starts the
// controller and two tensor-parallel ranks under mpirun, in a directory of
// its own, and the test watches it from outside through the controller's
// Admin service, the logs and the checkpoint directory. Whatever a test does
// to it, the destructor leaves no process behind (rwkv-launch, mpirun, the
// controller, every rank pid the controller ever reported).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "launch/controller.grpc.pb.h"
#include "launch/controller_store.h"

namespace rwkv::launch::testing {

// Generated English-like text (no download, no shared files), prepared with
// the real `rwkv-data prepare --tokenizer bytes` into <dir>/data/train_*.
// Returns the shard prefix.
std::string prepare_chaos_data(const std::string& dir);

// The whole file ("" when missing).
std::string read_bytes(const std::string& path);

// Whether mpirun exists (the chaos jobs need it).
bool have_mpirun();

// A live process whose command line contains `fragment` (not a zombie):
// guards every kill against a pid the system gave to someone else.
bool is_live_process(pid_t pid, const std::string& fragment);

struct TrainerJobSpec {
  std::string data_prefix;            // from prepare_chaos_data
  int64_t steps = 600;
  int64_t interval = 100;             // checkpoint.interval
  double heartbeat_timeout_s = 20;    // controller.heartbeat_timeout_s
  int max_restarts = 2;
  std::map<std::string, std::string> env;  // extra environment for rwkv-launch and the ranks
  std::string device = "cpu";         // `device` of the config: cpu or cuda (one GPU per rank)
};

class TrainerJob {
 public:
  // `dir` is the job's working directory: checkpoints in <dir>/ckpt, the
  // launcher's state in <dir>/state. Two jobs with the same spec in two
  // directories have the same config (relative paths), so their checkpoint
  // shards can be compared byte for byte.
  TrainerJob(std::string dir, TrainerJobSpec spec);
  ~TrainerJob();
  TrainerJob(const TrainerJob&) = delete;
  TrainerJob& operator=(const TrainerJob&) = delete;

  void start();
  // rwkv-launch's exit status, or nullopt if it still runs after timeout_s.
  std::optional<int> wait(double timeout_s);

  // The job as the controller sees it; nullopt while it cannot answer (not
  // up yet, restarting, no rank registered yet).
  std::optional<StatusReply> status();
  std::vector<CheckpointInfo> checkpoints();
  // Waits (polling) until pred(status) holds; the last status seen, or
  // nullopt after timeout_s.
  std::optional<StatusReply> wait_for(const std::function<bool(const StatusReply&)>& pred, double timeout_s);
  // The running controller's pid (state/controller.json), -1 if none yet.
  pid_t controller_pid() const;

  std::string path(const std::string& relative) const { return dir_ + "/" + relative; }
  std::string read(const std::string& relative) const;  // "" when missing
  // The ends of the launcher's, controller's and ranks' logs, for failure messages.
  std::string diagnostics() const;
  // After the job: the controller's record of it and rank 0's loss per step
  // (full precision, from controller.db).
  JobRecord job_record() const;
  std::map<int64_t, double> losses() const;

 private:
  std::string dir_;
  TrainerJobSpec spec_;
  pid_t launch_ = -1;
  std::string address_;  // the controller's gRPC address (the same across its restarts)
  std::string admin_token_;
  std::unique_ptr<Admin::Stub> admin_;
  std::set<pid_t> rank_pids_;  // every rank pid the controller reported: killed on the way out
  std::set<pid_t> controller_pids_;
};

}  // namespace rwkv::launch::testing
