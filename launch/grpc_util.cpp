#include "launch/grpc_util.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace rwkv::launch {

std::string read_pem_file(const std::string& path, const char* what) {
  std::ifstream in(path);
  RWKV_CHECK(in.good(), path, ": cannot read the ", what, "\n  ---> HINT: check the TLS flags (--tls-cert, --tls-key, --tls-ca)");
  std::stringstream text;
  text << in.rdbuf();
  RWKV_CHECK(text.str().find("-----BEGIN") != std::string::npos, path, ": the ", what,
             " is not a PEM file (no -----BEGIN line)\n  ---> HINT: pass the PEM form (openssl x509 -outform pem)");
  return text.str();
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& tls_ca_file) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a controller restart: ranks should not wait long
  // (a restarted controller gives every rank only heartbeat_timeout_s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  // A lost connection makes the channel resolve the address again, and by
  // default gRPC waits for its resolver's back-off (1 s, 1.6 s, 2.6 s, ...)
  // first: every call failed for ~5 s after a controller came back within
  // 0.3 s (measured with gRPC 1.51). The address is a fixed host:port, so
  // resolving it again at once costs nothing.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 100);
  if (tls_ca_file.empty()) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = read_pem_file(tls_ca_file, "TLS CA certificate");
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

std::shared_ptr<grpc::ServerCredentials> make_server_credentials(const std::string& cert_file,
                                                                 const std::string& key_file) {
  if (cert_file.empty() && key_file.empty()) return grpc::InsecureServerCredentials();
  RWKV_CHECK(!cert_file.empty() && !key_file.empty(), "TLS needs both a certificate and a key (got ",
             cert_file.empty() ? "only --tls-key" : "only --tls-cert", ")\n  ---> HINT: pass --tls-cert and --tls-key");
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({read_pem_file(key_file, "TLS private key"),
                                    read_pem_file(cert_file, "TLS certificate")});
  return grpc::SslServerCredentials(ssl);
}

namespace {

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE: return "unreachable";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "no answer in time";
    case grpc::StatusCode::UNAUTHENTICATED: return "refused (token)";
    case grpc::StatusCode::PERMISSION_DENIED: return "refused (needs the admin token)";
    case grpc::StatusCode::NOT_FOUND: return "not found";
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid request";
    case grpc::StatusCode::FAILED_PRECONDITION: return "refused";
    default: return "error";
  }
}

}  // namespace

bool is_transient(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

std::string describe_failure(const std::string& what, const std::string& address, const grpc::Status& status) {
  std::string hint;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      hint = "is rwkv-controller running and listening there? check RWKV_CONTROLLER / --controller, the port, "
             "and TLS on both sides (--tls-ca here when the controller has --tls-cert)";
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      hint = "pass the token rwkv-launch generated (<state-dir>/job.token for ranks, admin.token for rwkvctl), "
             "via RWKV_JOB_TOKEN / RWKV_ADMIN_TOKEN or --token-file";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      hint = "this command needs the admin token (<state-dir>/admin.token, RWKV_ADMIN_TOKEN)";
      break;
    case grpc::StatusCode::NOT_FOUND:
      hint = "check the job name (rwkvctl status lists the current job)";
      break;
    default:
      break;
  }
  std::string message =
      str_cat(what, ": controller at ", address, ": ", code_name(status.error_code()), ": ", status.error_message());
  // Messages from our own checks carry their hint already.
  if (!hint.empty() && message.find("---> HINT") == std::string::npos) message += "\n  ---> HINT: " + hint;
  return message;
}

}  // namespace rwkv::launch
