// rwkv-controller: the job's controller (docs/controller.md). Usually
// started by rwkv-launch; by hand:
//
//   rwkv-controller --job-token-file run/job.token --admin-token-file run/admin.token
//       --db run/controller.db --tensorboard-dir run/tensorboard [--listen 127.0.0.1:50051] [--http 127.0.0.1:50052]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "launch/controller_server.h"
#include "launch/flags.h"
#include "launch/tokens.h"

namespace {

using namespace rwkv::launch;

const char* kUsage =
    "usage: rwkv-controller --job-token-file FILE --admin-token-file FILE [flags]\n"
    "\n"
    "Registers the ranks of a job, watches their heartbeats, commits checkpoints once every rank\n"
    "acknowledged its shard, keeps metrics, and answers rwkvctl. State lives in --db (SQLite): a\n"
    "restarted controller with the same --db carries on where the old one stopped.";

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 || address.rfind("[::1]:", 0) == 0;
}

void write_ready_file(const std::string& path, const std::string& grpc, const std::string& http) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"grpc\": \"" << grpc << "\", \"http\": \"" << http << "\", \"pid\": " << ::getpid() << "}\n";
    RWKV_CHECK(out.good(), tmp, ": cannot write the ready file");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  FlagParser flags("rwkv-controller", kUsage);
  flags.add("listen", "gRPC address host:port; 0.0.0.0 for other machines (then use TLS)", "127.0.0.1:50051");
  flags.add("http", "HTTP address for the web page and /metrics; 'off' for none", "127.0.0.1:50052");
  flags.add("db", "SQLite state file", "controller.db");
  flags.add("job-token-file", "file with the job token (ranks)");
  flags.add("admin-token-file", "file with the admin token (rwkvctl commands)");
  flags.add("tls-cert", "TLS certificate (PEM); with --tls-key enables TLS");
  flags.add("tls-key", "TLS private key (PEM)");
  flags.add("tensorboard-dir", "write TensorBoard event files under DIR/<job>/");
  flags.add("heartbeat-timeout", "seconds without a heartbeat before a rank is failed (when the rank sends none)", "60");
  flags.add("checkpoint-timeout", "seconds for every rank to ack a checkpoint before it is aborted", "1800");
  flags.add_bool("verify-hashes", "recompute every shard's XXH3 before committing (reads every byte)");
  flags.add("ready-file", "write {\"grpc\": ..., \"http\": ..., \"pid\": ...} here once listening");
  flags.add("log-level", "debug, info, warn or error", "info");
  sigset_t signals;
  try {
    flags.parse(argc, argv);
    if (flags.help()) {
      std::fputs(flags.help_text().c_str(), stdout);
      return 0;
    }
    RWKV_CHECK(flags.positional().empty() && flags.rest().empty(), "rwkv-controller: unexpected argument '",
               flags.positional().empty() ? flags.rest().front() : flags.positional().front(),
               "'\n  ---> HINT: rwkv-controller --help lists the flags");
    rwkv::set_log_level(rwkv::parse_log_level(flags.get("log-level")));
    RWKV_CHECK(flags.given("job-token-file") && flags.given("admin-token-file"),
               "rwkv-controller: --job-token-file and --admin-token-file are required: every call must carry a token",
               "\n  ---> HINT: rwkv-launch generates both; by hand: head -c32 /dev/urandom | xxd -p -c64 > job.token; "
               "chmod 600 job.token");
    ServerOptions o;
    o.grpc_address = flags.get("listen");
    o.http_address = flags.get("http") == "off" ? "" : flags.get("http");
    o.job_token = read_token_file(flags.get("job-token-file"));
    o.admin_token = read_token_file(flags.get("admin-token-file"));
    RWKV_CHECK(o.job_token != o.admin_token, "rwkv-controller: the job token and the admin token are equal",
               "\n  ---> HINT: generate two different tokens, else every rank can stop the job");
    o.tls_cert_file = flags.get("tls-cert");
    o.tls_key_file = flags.get("tls-key");
    o.controller.db_path = flags.get("db");
    o.controller.tensorboard_dir = flags.get("tensorboard-dir");
    o.controller.default_heartbeat_timeout_s = flags.get_double("heartbeat-timeout");
    o.controller.checkpoint_timeout_s = flags.get_double("checkpoint-timeout");
    o.controller.verify_hashes = flags.get_bool("verify-hashes");
    RWKV_CHECK(o.controller.default_heartbeat_timeout_s > 0 && o.controller.checkpoint_timeout_s > 0,
               "rwkv-controller: --heartbeat-timeout and --checkpoint-timeout must be > 0");
    if (o.tls_cert_file.empty() && !is_loopback(o.grpc_address))
      rwkv::log_warn("controller: listening on ", o.grpc_address,
                     " without TLS: tokens and metrics cross the network in clear (pass --tls-cert/--tls-key)");

    // Signals are taken by sigwait below, never by a handler in a random thread.
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    ControllerServer server(o);
    const std::string http = server.http_address().empty() ? "" : "http://" + server.http_address() + "/";
    std::printf("rwkv-controller: listening on %s%s%s\n", server.grpc_address().c_str(), http.empty() ? "" : ", web ",
                http.c_str());
    std::fflush(stdout);
    if (flags.given("ready-file")) write_ready_file(flags.get("ready-file"), server.grpc_address(), server.http_address());
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    rwkv::log_info("controller: signal ", signal_number, ": shutting down (state is in ", o.controller.db_path, ")");
    server.shutdown();
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-controller: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-controller: internal error: %s\n", e.what());
    return 3;
  }
}
