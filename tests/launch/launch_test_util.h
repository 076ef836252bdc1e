// Helpers for the launch tests: temporary directories, tokens, an
// in-process controller, fake checkpoint shards, a tiny HTTP client, and
// running a command for its output.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launch/controller_client.h"
#include "launch/controller_server.h"

namespace rwkv::launch::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Shard files of the fake trainer: deterministic bytes per (step, rank), so
// rank 0 can list every rank's file in the manifest without a gather.
std::string fake_shard_name(int rank);
std::string fake_shard_bytes(int64_t step, int rank);
// Writes rank's shard (rank 0 also manifest.json naming every rank's shard)
// into <root>/step_N.partial/ and returns what the rank acks.
std::vector<ShardFile> write_fake_shard(const std::string& root, int64_t step, int rank, int world_size);
// Steps of committed checkpoints under root (COMMITTED markers), ascending.
std::vector<int64_t> committed_steps(const std::string& root);

// An in-process controller on 127.0.0.1 with free ports and fresh tokens.
struct TestController {
  explicit TestController(const std::string& db_path);
  TestController(const std::string& db_path, const ServerOptions& options);
  ServerOptions options;
  std::unique_ptr<ControllerServer> server;
  ControllerState& state() { return server->state(); }
  const std::string& address() const { return server->grpc_address(); }
  ClientOptions client(int rank, int world_size, const std::string& job = "job") const;
};

// GET http://address/target; returns the status code and fills body.
int http_get(const std::string& address, const std::string& target, std::string* body,
             const std::string& bearer_token = "");

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line (sh -c), returns its exit status and output.
CommandResult run_command(const std::string& command_line);

// Waits until pred() holds, up to timeout_s; returns whether it did.
bool wait_until(const std::function<bool()>& pred, double timeout_s);

}  // namespace rwkv::launch::testing
