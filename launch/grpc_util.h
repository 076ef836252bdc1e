// gRPC plumbing shared by the controller, the client and the tools:
// channels and server credentials (TLS when configured), and turning a
// failed call into one message that names the address and a hint.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace rwkv::launch {

// Plaintext when tls_ca_file is "", else TLS verifying the server against
// that CA (PEM) file.
std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& tls_ca_file);
// Insecure when both paths are "", else TLS with this certificate and key (PEM).
std::shared_ptr<grpc::ServerCredentials> make_server_credentials(const std::string& cert_file,
                                                                 const std::string& key_file);
// UNAVAILABLE and DEADLINE_EXCEEDED: the controller may come back.
bool is_transient(const grpc::Status& status);
// "<what>: controller at <address>: <code>: <message>" plus a hint by code.
std::string describe_failure(const std::string& what, const std::string& address, const grpc::Status& status);
// Reads a whole PEM file; errors name it.
std::string read_pem_file(const std::string& path, const char* what);

}  // namespace rwkv::launch
