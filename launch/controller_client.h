// What a training rank calls to talk to rwkv-controller. Small and
// synchronous; every method is safe to call from any thread (an async
// checkpoint writer may ack while the training thread heartbeats).
//
// The training loop, with `step` = optimizer steps completed:
//
//   ControllerClient client(client_options_from_env(rank, world_size));
//   ControllerCommand cmd = client.register_rank({digest, total_steps, start_step, ckpt_dir, ckpt_interval});
//   for (step = start_step + 1 .. total_steps) {
//     train one step
//     // cheap: at most one RPC per heartbeat_s; the last step forces one so the final checkpoint is heard of
//     cmd = client.heartbeat(step, {{"loss", loss}, {"lr", lr}, ...}, /*force=*/step == total_steps);
//     if (cmd.stop_now()) { client.finish(Outcome::Stopped, step, cmd.reason); exit }
//     if (cmd.checkpoint_at(step)) {
//       write this rank's shard into <ckpt_dir>/step_<step>.partial/ (rank 0 also manifest.json)
//       client.ack_checkpoint(step, {describe_file(partial_dir, "rank00001.safetensors"), ...});
//       if (cmd.stop_after_checkpoint()) { client.finish(Outcome::Stopped, step); exit }
//     }
//   }
//   client.finish(Outcome::Completed, total_steps);      // on an error: client.finish(Outcome::Failed, step, e.what())
//
// The controller decides checkpoint steps ahead of time (interval multiples,
// the final step, or a few heartbeats ahead when asked), so every rank hears
// of step S before it gets there. The controller then commits the directory
// once every rank has acked: docs/controller.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rwkv::launch {

struct ControllerCommand {
  enum class Kind { None, Checkpoint, Stop };
  Kind kind = Kind::None;
  int64_t step = 0;    // Checkpoint/Stop: the step whose end is checkpointed; Stop with 0: no checkpoint
  std::string reason;  // why (a stop names the failed rank or the operator)

  // Write this rank's shard now, at the end of step `completed_step`.
  bool checkpoint_at(int64_t completed_step) const {
    return kind != Kind::None && step > 0 && step == completed_step;
  }
  // Exit now, without a checkpoint.
  bool stop_now() const { return kind == Kind::Stop && step == 0; }
  // Exit after writing (and acking) the checkpoint of `step`.
  bool stop_after_checkpoint() const { return kind == Kind::Stop && step > 0; }
};

struct ClientOptions {
  std::string address;      // host:port of rwkv-controller
  std::string job;          // the job name (RWKV_JOB)
  std::string token;        // the job token
  std::string tls_ca_file;  // "" = plaintext; else verify the controller against this CA (PEM)
  int rank = 0;
  int world_size = 1;
  double heartbeat_s = 5.0;               // at most one heartbeat RPC per period
  double unreachable_timeout_s = 60.0;    // give up after the controller was unreachable this long
  double rpc_timeout_s = 10.0;            // one call's deadline
};

// Reads RWKV_CONTROLLER (address), RWKV_JOB, RWKV_JOB_TOKEN or
// RWKV_JOB_TOKEN_FILE, RWKV_TLS_CA (what rwkv-launch exports). Throws
// naming the missing variable.
ClientOptions client_options_from_env(int rank, int world_size);

struct RankInfo {
  std::string config_digest;         // config_digest_hex(config): ranks of one job must agree
  int64_t total_steps = 0;
  int64_t start_step = 0;            // steps already completed (after a resume)
  std::string checkpoint_dir;        // made absolute here; shared by every rank and the controller
  int64_t checkpoint_interval = 0;   // steps; 0 = only the final checkpoint
  double heartbeat_timeout_s = 0.0;  // 0: the controller's default
  int64_t keep_last = 0;             // checkpoint.keep_last: the controller removes older committed ones
  int64_t keep_every = 0;            // checkpoint.keep_every
};

struct ShardFile {
  std::string name;  // relative to the checkpoint directory
  uint64_t bytes = 0;
  std::string xxh3;  // 16 lowercase hex digits
};
// Size and XXH3-64 of <dir>/<name>.
ShardFile describe_file(const std::string& dir, const std::string& name);

enum class Outcome { Completed, Stopped, Failed };

class ControllerClient {
 public:
  explicit ControllerClient(ClientOptions options);
  ~ControllerClient();
  ControllerClient(const ControllerClient&) = delete;
  ControllerClient& operator=(const ControllerClient&) = delete;

  // Registers this rank (host and pid of this process). Waits for a
  // controller that is not up yet, up to unreachable_timeout_s; then, or on
  // a refusal (token, mismatched config), throws rwkv::Error.
  ControllerCommand register_rank(const RankInfo& info);

  // Call once per step. Metrics are buffered and sent with the next RPC; an
  // RPC goes out at most every heartbeat_s (now when `force`); in between the
  // last command is returned. A controller that is briefly away is retried
  // (training goes on); away longer than unreachable_timeout_s, or refusing
  // the token, throws rwkv::Error naming the address.
  ControllerCommand heartbeat(int64_t step, const std::map<std::string, double>& metrics = {}, bool force = false);

  // After this rank's shard files of checkpoint `step` are durable. Retries
  // while the controller is away. Returns the checkpoint's state after the
  // ack: "requested" (others still writing), "committing", "committed" or
  // "aborted" (then it will never be committed; training goes on).
  std::string ack_checkpoint(int64_t step, const std::vector<ShardFile>& files);
  // This rank could not write its shard: the checkpoint is aborted.
  void fail_checkpoint(int64_t step, const std::string& error);

  // The rank's last call. Never throws (it runs on error paths); a failure
  // is logged.
  void finish(Outcome outcome, int64_t step, const std::string& message = "");

  const ClientOptions& options() const { return options_; }
  int64_t generation() const { return generation_; }

 private:
  struct Impl;
  ControllerCommand do_register(int64_t start_step);
  std::string ack(int64_t step, bool ok, const std::string& error, const std::vector<ShardFile>& files);

  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
  std::mutex mu_;
  RankInfo info_;
  bool registered_ = false;
  std::string session_;
  int64_t generation_ = 0;
};

}  // namespace rwkv::launch
