// The gRPC face of ControllerState: the Worker and Admin services, with the
// token check in front of every call. Tokens travel in the call metadata
// under "x-rwkv-token". Worker calls take the job token; Status, Metrics and
// Checkpoints take the job or the admin token; RequestCheckpoint and Stop take
// the admin token. A refused call is answered UNAUTHENTICATED (no or wrong
// token) or PERMISSION_DENIED (job token on an admin command), logged with the
// peer and the method, and counted (rwkv_refused_calls_total).
#pragma once

#include <memory>
#include <string>

#include "launch/controller.grpc.pb.h"
#include "launch/controller_state.h"

namespace rwkv::launch {

enum class Role { Worker, Reader, Admin };

// "" when allowed, else why not; `code` receives the refusal status code.
std::string check_token(const std::string& presented, Role role, const std::string& job_token,
                        const std::string& admin_token, grpc::StatusCode* code);

class ControllerService {
 public:
  ControllerService(ControllerState& state, std::string job_token, std::string admin_token);
  ~ControllerService();
  grpc::Service* worker_service();
  grpc::Service* admin_service();

 private:
  class Worker;
  class Admin;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Admin> admin_;
};

}  // namespace rwkv::launch
