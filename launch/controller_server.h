// Everything rwkv-controller runs, in one object that tests can start in
// process: the state (SQLite), the gRPC server (Worker + Admin), the HTTP
// server (page, JSON, Prometheus) and the ticker that detects missed
// heartbeats. Addresses with port 0 get a free port; grpc_address() and
// http_address() report the ones bound.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "launch/controller_state.h"

namespace grpc {
class Server;
}

namespace rwkv::launch {

class ControllerService;
class HttpServer;

struct ServerOptions {
  ControllerOptions controller;
  std::string grpc_address = "127.0.0.1:0";
  std::string http_address = "127.0.0.1:0";  // "": no HTTP server
  std::string job_token, admin_token;        // both required
  std::string tls_cert_file, tls_key_file;   // both or neither
  double tick_s = 0.2;                       // how often heartbeat timeouts are checked
};

class ControllerServer {
 public:
  // Starts serving; throws rwkv::Error (naming the address) when it cannot.
  explicit ControllerServer(ServerOptions options);
  ~ControllerServer();  // shutdown()
  ControllerServer(const ControllerServer&) = delete;
  ControllerServer& operator=(const ControllerServer&) = delete;

  const std::string& grpc_address() const { return grpc_address_; }
  std::string http_address() const;
  ControllerState& state() { return *state_; }
  // Stops the servers (in-flight calls finish) and the ticker. Idempotent.
  void shutdown();

 private:
  ServerOptions options_;
  std::unique_ptr<ControllerState> state_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  std::string grpc_address_;
  std::atomic<bool> stopping_{false};
  std::thread ticker_;
};

}  // namespace rwkv::launch
