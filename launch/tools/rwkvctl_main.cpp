// rwkvctl: look at and steer a running job through its controller.
//
//   rwkvctl status | watch | metrics [--csv] | checkpoints | checkpoint | stop [--now]
//
// The controller's address comes from --controller or RWKV_CONTROLLER, the
// token from --token / --token-file or RWKV_ADMIN_TOKEN / RWKV_ADMIN_TOKEN_FILE
// (read commands also take the job token: RWKV_JOB_TOKEN).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "launch/controller.grpc.pb.h"
#include "launch/flags.h"
#include "launch/grpc_util.h"
#include "launch/process.h"
#include "launch/text_format.h"
#include "launch/tokens.h"

namespace {

using namespace rwkv::launch;

const char* kUsage =
    "usage: rwkvctl [flags] COMMAND\n"
    "\n"
    "commands:\n"
    "  status        job, step/total, loss, tokens/s, ETA, ranks alive, last committed checkpoint\n"
    "  watch         status, refreshed every --interval s until the job ends (Ctrl-C leaves)\n"
    "  metrics       metric history (--csv for a table; --name loss,lr; --since-step N; --last N)\n"
    "  checkpoints   every checkpoint: step, state, acks, committed directory or why it was aborted\n"
    "  checkpoint    ask for a checkpoint as soon as possible (admin token)\n"
    "  stop          write a checkpoint, then stop every rank (admin token); --now: stop without one\n"
    "\n"
    "environment: RWKV_CONTROLLER (host:port), RWKV_ADMIN_TOKEN or RWKV_ADMIN_TOKEN_FILE,\n"
    "             RWKV_JOB_TOKEN (read commands), RWKV_JOB, RWKV_TLS_CA";

struct Ctl {
  std::string address, token;
  double timeout_s = 10;
  std::string job;
  std::unique_ptr<Admin::Stub> stub;

  std::unique_ptr<grpc::ClientContext> context() const {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata(kTokenMetadataKey, token);
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    return c;
  }
  void check(const grpc::Status& status, const char* command) const {
    if (!status.ok()) RWKV_FAIL(describe_failure(std::string("rwkvctl ") + command, address, status));
  }
  StatusReply status() const {
    StatusRequest q;
    q.set_job(job);
    StatusReply r;
    check(stub->Status(context().get(), q, &r), "status");
    return r;
  }
};

std::string resolve_token(const FlagParser& flags, bool admin) {
  if (flags.given("token")) return flags.get("token");
  if (flags.given("token-file")) return read_token_file(flags.get("token-file"));
  if (!env_or_empty("RWKV_ADMIN_TOKEN").empty()) return env_or_empty("RWKV_ADMIN_TOKEN");
  if (!env_or_empty("RWKV_ADMIN_TOKEN_FILE").empty()) return read_token_file(env_or_empty("RWKV_ADMIN_TOKEN_FILE"));
  if (!admin && !env_or_empty("RWKV_JOB_TOKEN").empty()) return env_or_empty("RWKV_JOB_TOKEN");
  if (!admin && !env_or_empty("RWKV_JOB_TOKEN_FILE").empty()) return read_token_file(env_or_empty("RWKV_JOB_TOKEN_FILE"));
  RWKV_FAIL("rwkvctl: no token", admin ? " (this command needs the admin token)" : "",
            "\n  ---> HINT: pass --token-file <state-dir>/admin.token, or set RWKV_ADMIN_TOKEN");
}

int watch(const Ctl& ctl, double interval_s, int64_t count) {
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  for (int64_t i = 0; count <= 0 || i < count; ++i) {
    const StatusReply s = ctl.status();
    if (tty) std::fputs("\033[H\033[2J", stdout);  // redraw in place
    else if (i > 0) std::fputs("----\n", stdout);
    std::fputs(format_status(s).c_str(), stdout);
    std::fflush(stdout);
    if (s.state() == "completed" || s.state() == "stopped") return 0;
    if (s.state() == "failed") return 1;
    if (count <= 0 || i + 1 < count) std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  FlagParser flags("rwkvctl", kUsage);
  flags.add("controller", "controller host:port (default $RWKV_CONTROLLER)");
  flags.add("token", "the admin (or, for reading, job) token");
  flags.add("token-file", "file holding the token (e.g. <state-dir>/admin.token)");
  flags.add("job", "job name (default $RWKV_JOB, else the controller's latest job)");
  flags.add("tls-ca", "CA certificate (PEM) when the controller uses TLS (default $RWKV_TLS_CA)");
  flags.add("timeout", "seconds to wait for the controller", "10");
  flags.add_bool("csv", "metrics: CSV, one row per step and rank");
  flags.add("name", "metrics: comma-separated metric names (default: all)");
  flags.add("since-step", "metrics: from this step on", "0");
  flags.add("last", "metrics: only the last N steps (0: all)", "0");
  flags.add("interval", "watch: seconds between refreshes", "2");
  flags.add("count", "watch: stop after N refreshes (0: until the job ends)", "0");
  flags.add_bool("now", "stop: exit without writing a checkpoint");
  try {
    flags.parse(argc, argv);
    if (flags.help()) {
      std::fputs(flags.help_text().c_str(), stdout);
      return 0;
    }
    if (flags.positional().size() != 1) {
      std::fprintf(stderr, "rwkvctl: error: expected one command, got %zu\n  ---> HINT: rwkvctl --help\n\n%s\n",
                   flags.positional().size(), kUsage);
      return 2;
    }
    const std::string command = flags.positional()[0];
    const bool known = command == "status" || command == "watch" || command == "metrics" ||
                       command == "checkpoints" || command == "checkpoint" || command == "stop";
    RWKV_CHECK(known, "rwkvctl: unknown command '", command,
               "'\n  ---> HINT: one of status, watch, metrics, checkpoints, checkpoint, stop");
    Ctl ctl;
    ctl.address = flags.given("controller") ? flags.get("controller") : env_or_empty("RWKV_CONTROLLER");
    RWKV_CHECK(!ctl.address.empty(), "rwkvctl: no controller address\n  ---> HINT: pass --controller host:port or set ",
               "RWKV_CONTROLLER (rwkv-launch prints it and writes <state-dir>/controller.json)");
    ctl.token = resolve_token(flags, command == "checkpoint" || command == "stop");
    ctl.job = flags.given("job") ? flags.get("job") : env_or_empty("RWKV_JOB");
    ctl.timeout_s = flags.get_double("timeout");
    const std::string ca = flags.given("tls-ca") ? flags.get("tls-ca") : env_or_empty("RWKV_TLS_CA");
    ctl.stub = Admin::NewStub(make_channel(ctl.address, ca));

    if (command == "status") {
      std::fputs(format_status(ctl.status()).c_str(), stdout);
    } else if (command == "watch") {
      return watch(ctl, flags.get_double("interval"), flags.get_int("count"));
    } else if (command == "metrics") {
      MetricsRequest q;
      q.set_job(ctl.job);
      for (const std::string& n : split_words([&] {
             std::string names = flags.get("name");
             for (char& c : names) c = c == ',' ? ' ' : c;
             return names;
           }()))
        q.add_names(n);
      q.set_since_step(flags.get_int("since-step"));
      q.set_limit(static_cast<int32_t>(flags.get_int("last")));
      MetricsReply r;
      ctl.check(ctl.stub->Metrics(ctl.context().get(), q, &r), "metrics");
      std::fputs((flags.get_bool("csv") ? metrics_csv(r) : format_metrics(r)).c_str(), stdout);
    } else if (command == "checkpoints") {
      CheckpointsRequest q;
      q.set_job(ctl.job);
      CheckpointsReply r;
      ctl.check(ctl.stub->Checkpoints(ctl.context().get(), q, &r), "checkpoints");
      std::fputs(format_checkpoints(r).c_str(), stdout);
    } else if (command == "checkpoint") {
      RequestCheckpointRequest q;
      q.set_job(ctl.job);
      RequestCheckpointReply r;
      ctl.check(ctl.stub->RequestCheckpoint(ctl.context().get(), q, &r), "checkpoint");
      std::printf("%s\n", r.message().c_str());
    } else {
      StopRequest q;
      q.set_job(ctl.job);
      q.set_now(flags.get_bool("now"));
      StopReply r;
      ctl.check(ctl.stub->Stop(ctl.context().get(), q, &r), "stop");
      std::printf("%s\n", r.message().c_str());
    }
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkvctl: internal error: %s\n", e.what());
    return 3;
  }
}
