#include "launch/controller_service.h"

#include "core/log.h"
#include "launch/tokens.h"

namespace rwkv::launch {

namespace {

struct Auth {
  ControllerState& state;
  std::string job_token, admin_token;

  // Returns OK when the call may go on; otherwise the refusal, logged.
  grpc::Status check(grpc::ServerContext* context, Role role, const char* method) const {
    std::string presented;
    const auto& metadata = context->client_metadata();
    auto it = metadata.find(kTokenMetadataKey);
    if (it != metadata.end()) presented.assign(it->second.data(), it->second.size());
    grpc::StatusCode code = grpc::StatusCode::OK;
    const std::string why = check_token(presented, role, job_token, admin_token, &code);
    if (why.empty()) return grpc::Status::OK;
    state.refused_calls.fetch_add(1);
    log_warn("controller: refused ", method, " from ", context->peer(), ": ", why);
    return grpc::Status(code, why);
  }
};

// Runs a handler, mapping errors to statuses: the caller's mistakes keep
// their message; anything else is INTERNAL and logged.
template <typename F>
grpc::Status run(const char* method, F&& f) {
  try {
    f();
    return grpc::Status::OK;
  } catch (const RpcError& e) {
    switch (e.code()) {
      case RpcError::Code::InvalidArgument: return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
      case RpcError::Code::NotFound: return grpc::Status(grpc::StatusCode::NOT_FOUND, e.what());
      default: return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, e.what());
    }
  } catch (const std::exception& e) {
    log_error("controller: ", method, " failed: ", e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, str_cat(method, " failed in the controller: ", e.what()));
  }
}

}  // namespace

std::string check_token(const std::string& presented, Role role, const std::string& job_token,
                        const std::string& admin_token, grpc::StatusCode* code) {
  *code = grpc::StatusCode::UNAUTHENTICATED;
  if (presented.empty()) return "missing token (metadata x-rwkv-token)";
  const bool is_admin = !admin_token.empty() && tokens_equal(presented, admin_token);
  const bool is_job = !job_token.empty() && tokens_equal(presented, job_token);
  if (!is_admin && !is_job) return "wrong token";
  switch (role) {
    case Role::Worker:
      if (is_job) return "";
      *code = grpc::StatusCode::PERMISSION_DENIED;
      return "worker calls take the job token";
    case Role::Reader:
      return "";
    case Role::Admin:
      if (is_admin) return "";
      *code = grpc::StatusCode::PERMISSION_DENIED;
      return "this command needs the admin token";
  }
  return "unknown role";
}

class ControllerService::Worker final : public rwkv::launch::Worker::Service {
 public:
  explicit Worker(Auth auth) : auth_(std::move(auth)) {}

  grpc::Status Register(grpc::ServerContext* c, const RegisterRequest* q, RegisterReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Worker, "Register"); !s.ok()) return s;
    return run("Register", [&] { *a = auth_.state.register_rank(*q); });
  }
  grpc::Status Heartbeat(grpc::ServerContext* c, const HeartbeatRequest* q, HeartbeatReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Worker, "Heartbeat"); !s.ok()) return s;
    return run("Heartbeat", [&] { *a = auth_.state.heartbeat(*q); });
  }
  grpc::Status AckCheckpoint(grpc::ServerContext* c, const AckCheckpointRequest* q, AckCheckpointReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Worker, "AckCheckpoint"); !s.ok()) return s;
    return run("AckCheckpoint", [&] { *a = auth_.state.ack_checkpoint(*q); });
  }
  grpc::Status Finish(grpc::ServerContext* c, const FinishRequest* q, FinishReply*) override {
    if (grpc::Status s = auth_.check(c, Role::Worker, "Finish"); !s.ok()) return s;
    return run("Finish", [&] { auth_.state.finish(*q); });
  }

 private:
  Auth auth_;
};

class ControllerService::Admin final : public rwkv::launch::Admin::Service {
 public:
  explicit Admin(Auth auth) : auth_(std::move(auth)) {}

  grpc::Status Status(grpc::ServerContext* c, const StatusRequest* q, StatusReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Reader, "Status"); !s.ok()) return s;
    return run("Status", [&] { *a = auth_.state.status(q->job()); });
  }
  grpc::Status Metrics(grpc::ServerContext* c, const MetricsRequest* q, MetricsReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Reader, "Metrics"); !s.ok()) return s;
    return run("Metrics", [&] { *a = auth_.state.metrics(*q); });
  }
  grpc::Status Checkpoints(grpc::ServerContext* c, const CheckpointsRequest* q, CheckpointsReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Reader, "Checkpoints"); !s.ok()) return s;
    return run("Checkpoints", [&] { *a = auth_.state.checkpoints(q->job()); });
  }
  grpc::Status RequestCheckpoint(grpc::ServerContext* c, const RequestCheckpointRequest* q,
                                 RequestCheckpointReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Admin, "RequestCheckpoint"); !s.ok()) return s;
    return run("RequestCheckpoint", [&] { *a = auth_.state.request_checkpoint(q->job()); });
  }
  grpc::Status Stop(grpc::ServerContext* c, const StopRequest* q, StopReply* a) override {
    if (grpc::Status s = auth_.check(c, Role::Admin, "Stop"); !s.ok()) return s;
    return run("Stop", [&] { *a = auth_.state.stop(q->job(), q->now()); });
  }

 private:
  Auth auth_;
};

ControllerService::ControllerService(ControllerState& state, std::string job_token, std::string admin_token)
    : worker_(std::make_unique<Worker>(Auth{state, job_token, admin_token})),
      admin_(std::make_unique<Admin>(Auth{state, job_token, admin_token})) {}

ControllerService::~ControllerService() = default;
grpc::Service* ControllerService::worker_service() { return worker_.get(); }
grpc::Service* ControllerService::admin_service() { return admin_.get(); }

}  // namespace rwkv::launch
