#include "launch/controller_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "core/log.h"
#include "launch/controller_service.h"
#include "launch/grpc_util.h"
#include "launch/http_server.h"
#include "launch/monitoring.h"

namespace rwkv::launch {

ControllerServer::ControllerServer(ServerOptions options) : options_(std::move(options)) {
  RWKV_CHECK(!options_.job_token.empty() && !options_.admin_token.empty(),
             "rwkv-controller needs a job token and an admin token\n  ---> HINT: pass --job-token-file and "
             "--admin-token-file (rwkv-launch generates both)");
  std::string host;
  int port = 0;
  split_host_port(options_.grpc_address, &host, &port, "gRPC address");
  state_ = std::make_unique<ControllerState>(options_.controller);
  service_ = std::make_unique<ControllerService>(*state_, options_.job_token, options_.admin_token);

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options_.grpc_address,
                           make_server_credentials(options_.tls_cert_file, options_.tls_key_file), &bound_port);
  builder.RegisterService(service_->worker_service());
  builder.RegisterService(service_->admin_service());
  grpc_ = builder.BuildAndStart();
  RWKV_CHECK(grpc_ != nullptr && bound_port > 0, "rwkv-controller: cannot listen on ", options_.grpc_address,
             "\n  ---> HINT: the port is taken or the address is not one of this machine; port 0 picks a free one");
  grpc_address_ = host + ":" + std::to_string(bound_port);

  if (!options_.http_address.empty()) {
    http_ = std::make_unique<HttpServer>(options_.http_address, [this](const HttpRequest& r) {
      return handle_http(*state_, options_.job_token, options_.admin_token, r);
    });
  }
  ticker_ = std::thread([this] {
    while (!stopping_) {
      try {
        state_->tick();
      } catch (const std::exception& e) {
        log_error("controller: failure check failed: ", e.what());
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(options_.tick_s));
    }
  });
  log_info("controller: gRPC on ", grpc_address_, (options_.tls_cert_file.empty() ? " (plaintext)" : " (TLS)"),
           http_ ? ", HTTP on http://" + http_->address() + "/" : std::string(", no HTTP"));
}

ControllerServer::~ControllerServer() { shutdown(); }

std::string ControllerServer::http_address() const { return http_ ? http_->address() : ""; }

void ControllerServer::shutdown() {
  if (stopping_.exchange(true)) return;
  if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (http_) http_->stop();
  if (ticker_.joinable()) ticker_.join();
  state_->wait_for_commits();
}

}  // namespace rwkv::launch
