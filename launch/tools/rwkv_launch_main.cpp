// rwkv-launch: runs a whole job. Generates the job and admin tokens, starts
// rwkv-controller, starts the ranks (mpirun, srun, or locally), watches them,
// and restarts the ranks from the last committed checkpoint when they fail.
//
//   rwkv-launch --job tiny --np 4 -- rwkv-train --config configs/tiny.yaml --set controller.enabled=true
//
// The ranks find the controller and their token in the environment:
// RWKV_CONTROLLER, RWKV_JOB, RWKV_JOB_TOKEN (and RWKV_JOB_TOKEN_FILE),
// RWKV_TLS_CA, RWKV_ATTEMPT; with --launcher local also RWKV_RANK and
// RWKV_WORLD_SIZE. The trainer resumes from the newest committed checkpoint
// by itself (checkpoint.resume: auto).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "launch/controller.grpc.pb.h"
#include "launch/flags.h"
#include "launch/grpc_util.h"
#include "launch/launcher_command.h"
#include "launch/process.h"
#include "launch/tokens.h"

namespace {

using namespace rwkv::launch;
namespace fs = std::filesystem;
using rwkv::str_cat;

const char* kUsage =
    "usage: rwkv-launch --job NAME --np N [flags] -- TRAINER [ARGS...]\n"
    "\n"
    "Starts rwkv-controller and N ranks of TRAINER, and restarts the ranks (up to --max-restarts\n"
    "times) when one fails; the trainer resumes from the newest committed checkpoint.\n"
    "--launcher is a command template: {np} and {job} are replaced, TRAINER ARGS are appended.\n"
    "  mpirun (default): mpirun -np {np} -x RWKV_CONTROLLER -x RWKV_JOB -x RWKV_JOB_TOKEN\n"
    "                    -x RWKV_JOB_TOKEN_FILE -x RWKV_TLS_CA -x RWKV_ATTEMPT\n"
    "  Slurm:            srun --kill-on-bad-exit=1 --ntasks {np}    (see launch/slurm/rwkv.sbatch)\n"
    "  local:            N processes on this machine, with RWKV_RANK and RWKV_WORLD_SIZE";

const char* kDefaultLauncher =
    "mpirun -np {np} -x RWKV_CONTROLLER -x RWKV_JOB -x RWKV_JOB_TOKEN -x RWKV_JOB_TOKEN_FILE -x RWKV_TLS_CA "
    "-x RWKV_ATTEMPT";

volatile sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) { g_signal = sig; }

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string tail_of(const std::string& path, size_t bytes) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  return s.size() > bytes ? "..." + s.substr(s.size() - bytes) : s;
}

struct Launch {
  explicit Launch(FlagParser& f) : flags(f) {}
  Launch(const Launch&) = delete;
  Launch& operator=(const Launch&) = delete;

  FlagParser& flags;
  std::string job, state_dir, controller_bin, launcher, listen, http, advertise, tls_ca;
  int np = 1;
  Placement placement;  // --hostfile, --ranks-per-node, --env
  std::string job_token, admin_token;
  pid_t controller = -1;
  std::string grpc_address;   // as bound: host:port
  std::string http_address;
  std::string rank_address;   // as the ranks dial it
  std::vector<pid_t> ranks;   // process groups of the current attempt

  // Whatever happens, nothing is left running behind us.
  ~Launch() {
    stop_ranks();
    stop_controller();
  }

  void stop_ranks() {
    for (pid_t p : ranks)
      if (p > 0) terminate_group(p, 10);
    ranks.clear();
  }

  std::string path(const char* name) const { return (fs::path(state_dir) / name).string(); }

  // Starts rwkv-controller and waits for its ready file.
  void start_controller() {
    const std::string ready = path("controller.json");
    fs::remove(ready);
    ProcessSpec spec;
    spec.argv = {controller_bin, "--listen", listen, "--http", http, "--db", path("controller.db"),
                 "--job-token-file", path("job.token"), "--admin-token-file", path("admin.token"),
                 "--tensorboard-dir", path("tensorboard"), "--ready-file", ready,
                 "--heartbeat-timeout", flags.get("heartbeat-timeout")};
    if (flags.given("tls-cert")) spec.argv.insert(spec.argv.end(), {"--tls-cert", flags.get("tls-cert")});
    if (flags.given("tls-key")) spec.argv.insert(spec.argv.end(), {"--tls-key", flags.get("tls-key")});
    spec.log_path = path("controller.log");
    controller = spawn_process(spec);
    for (int i = 0; i < 300; ++i) {
      if (fs::exists(ready)) {
        std::ifstream in(ready);
        const nlohmann::json j = nlohmann::json::parse(in);
        grpc_address = j.at("grpc").get<std::string>();
        http_address = j.at("http").get<std::string>();
        // Later controllers bind the same ports, so the ranks can reconnect.
        listen = grpc_address;
        if (!http_address.empty()) http = http_address;
        const std::string port = grpc_address.substr(grpc_address.rfind(':') + 1);
        rank_address = advertise.empty() ? grpc_address : advertise + ":" + port;
        return;
      }
      if (std::optional<int> code = poll_exit(controller))
        RWKV_FAIL("rwkv-launch: rwkv-controller exited with status ", *code, " before it was ready; its log (",
                  spec.log_path, ") ends with:\n", tail_of(spec.log_path, 2000));
      sleep_s(0.1);
    }
    terminate_group(controller, 2);
    RWKV_FAIL("rwkv-launch: rwkv-controller was not ready within 30 s; see ", spec.log_path);
  }

  void stop_controller() {
    if (controller > 0) terminate_group(controller, 5);
    controller = -1;
  }

  // The controller's admin service, dialled by the name the ranks use (the
  // one a TLS certificate carries), and a call context with the admin token
  // and a 5 s deadline.
  std::unique_ptr<Admin::Stub> admin_stub() const { return Admin::NewStub(make_channel(rank_address, tls_ca)); }
  std::unique_ptr<grpc::ClientContext> admin_context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata(kTokenMetadataKey, admin_token);
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return context;
  }

  // Asks the controller to stop the job gracefully: every rank writes a final
  // checkpoint, the controller commits it, then the ranks exit. False (with
  // the reason logged) when the controller cannot take the request, e.g.
  // before any rank registered.
  bool request_graceful_stop() {
    std::unique_ptr<grpc::ClientContext> context = admin_context();
    StopRequest q;
    q.set_job(job);
    StopReply reply;
    const grpc::Status status = admin_stub()->Stop(context.get(), q, &reply);
    if (!status.ok()) {
      rwkv::log_warn("launch: the controller did not take the stop request (", status.error_message(), ")");
      return false;
    }
    rwkv::log_info("launch: ", reply.message());
    return true;
  }

  // The job's state and generation as the controller sees them ("" while no rank registered).
  std::pair<std::string, int64_t> job_state() {
    std::unique_ptr<grpc::ClientContext> context = admin_context();
    StatusRequest q;
    q.set_job(job);
    StatusReply reply;
    const grpc::Status status = admin_stub()->Status(context.get(), q, &reply);
    if (!status.ok()) return {status.error_code() == grpc::StatusCode::NOT_FOUND ? "" : "unknown", 0};
    return {reply.state(), reply.generation()};
  }

  void start_ranks(int attempt, const std::vector<std::string>& trainer) {
    std::map<std::string, std::string> env = {{"RWKV_CONTROLLER", rank_address},
                                              {"RWKV_JOB", job},
                                              {"RWKV_JOB_TOKEN", job_token},
                                              {"RWKV_JOB_TOKEN_FILE", fs::absolute(path("job.token")).string()},
                                              {"RWKV_TLS_CA", tls_ca},
                                              {"RWKV_ATTEMPT", std::to_string(attempt)}};
    const std::string log = path("ranks.log");
    std::vector<pid_t>& pids = ranks;
    if (launcher == "local") {
      for (const auto& [name, value] : env_assignments(placement)) env[name] = value;
      for (int r = 0; r < np; ++r) {
        ProcessSpec spec{trainer, env, log};
        spec.env["RWKV_RANK"] = std::to_string(r);
        spec.env["RWKV_WORLD_SIZE"] = std::to_string(np);
        pids.push_back(spawn_process(spec));
      }
    } else {
      ProcessSpec spec{launcher_argv(launcher, np, job, placement), env, log};
      spec.argv.insert(spec.argv.end(), trainer.begin(), trainer.end());
      pids.push_back(spawn_process(spec));
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  FlagParser flags("rwkv-launch", kUsage);
  flags.add("job", "job name (letters, digits, . _ -)");
  flags.add("np", "number of ranks", "1");
  flags.add("state-dir", "tokens, controller.db, logs and TensorBoard files (default runs/<job>/launch)");
  flags.add("launcher", "rank launcher template, or 'local'", kDefaultLauncher);
  flags.add("max-restarts", "restarts of the ranks after a failure", "3");
  flags.add("restart-delay", "seconds before a restart", "2");
  flags.add("listen", "controller gRPC address (port 0: a free one, kept across controller restarts)", "127.0.0.1:0");
  flags.add("http", "controller web/Prometheus address, or 'off'", "127.0.0.1:0");
  flags.add("advertise", "host name the ranks use to reach the controller (needed with --listen 0.0.0.0:PORT)");
  flags.add("controller-bin", "rwkv-controller to run (default: next to rwkv-launch)");
  flags.add("heartbeat-timeout", "seconds of silence before the controller fails a rank", "60");
  flags.add("tls-cert", "controller TLS certificate (PEM)");
  flags.add("tls-key", "controller TLS key (PEM)");
  flags.add("tls-ca", "CA (PEM) the ranks and rwkv-launch verify the controller with");
  flags.add("poll", "seconds between checks of the ranks and the controller", "1");
  flags.add("hostfile", "mpirun hostfile: the nodes and slots of the ranks");
  flags.add("ranks-per-node", "ranks on each node (mpirun --map-by ppr:N:node, srun --ntasks-per-node)");
  flags.add("env", "environment for the ranks, comma-separated NAME (passed on) or NAME=VALUE, e.g. NCCL_DEBUG=WARN");
  flags.add("stop-timeout", "seconds SIGINT/SIGTERM waits for the final checkpoint before stopping the ranks hard", "600");
  try {
    flags.parse(argc, argv);
    if (flags.help()) {
      std::fputs(flags.help_text().c_str(), stdout);
      return 0;
    }
    Launch l(flags);
    l.job = flags.get("job");
    RWKV_CHECK(!l.job.empty(), "rwkv-launch: --job is required\n  ---> HINT: --job my-run");
    RWKV_CHECK(is_valid_job_name(l.job), "rwkv-launch: --job '", l.job, "' is not a valid job name",
               "\n  ---> HINT: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    RWKV_CHECK(!flags.rest().empty(), "rwkv-launch: no trainer command",
               "\n  ---> HINT: put it after --, e.g. -- rwkv-train --config c.yaml");
    RWKV_CHECK(flags.positional().empty(), "rwkv-launch: unexpected argument '", flags.positional().front(),
               "'\n  ---> HINT: the trainer command goes after --");
    l.np = static_cast<int>(flags.get_int("np"));
    RWKV_CHECK(l.np >= 1, "rwkv-launch: --np must be >= 1, got ", l.np, "\n  ---> HINT: the number of ranks, e.g. --np 8");
    const int64_t max_restarts = flags.get_int("max-restarts");
    RWKV_CHECK(max_restarts >= 0, "rwkv-launch: --max-restarts must be >= 0, got ", max_restarts,
               "\n  ---> HINT: 0 runs the ranks once");
    l.state_dir = flags.given("state-dir") ? flags.get("state-dir") : "runs/" + l.job + "/launch";
    l.state_dir = fs::absolute(l.state_dir).string();
    l.launcher = flags.get("launcher");
    l.placement.hostfile = flags.get("hostfile");
    if (!l.placement.hostfile.empty()) {
      RWKV_CHECK(fs::exists(l.placement.hostfile), "rwkv-launch: --hostfile ", l.placement.hostfile, " not found",
                 "\n  ---> HINT: one line per node, e.g. 'node01 slots=8'");
      l.placement.hostfile = fs::absolute(l.placement.hostfile).string();
    }
    if (flags.given("ranks-per-node")) {
      l.placement.ranks_per_node = static_cast<int>(flags.get_int("ranks-per-node"));
      RWKV_CHECK(l.placement.ranks_per_node >= 1, "rwkv-launch: --ranks-per-node must be >= 1, got ",
                 l.placement.ranks_per_node, "\n  ---> HINT: usually the GPUs per node, e.g. 8");
    }
    l.placement.env = parse_env_list(flags.get("env"));
    const double stop_timeout = flags.get_double("stop-timeout");
    RWKV_CHECK(stop_timeout >= 0, "rwkv-launch: --stop-timeout must be >= 0 seconds, got ", stop_timeout,
               "\n  ---> HINT: the time a final checkpoint may take, e.g. 600");
    // The placement flags must suit the launcher before anything starts.
    (void)launcher_argv(l.launcher, l.np, l.job, l.placement);
    l.listen = flags.get("listen");
    l.http = flags.get("http");
    l.advertise = flags.get("advertise");
    l.tls_ca = flags.given("tls-ca") ? fs::absolute(flags.get("tls-ca")).string() : "";
    l.controller_bin = flags.given("controller-bin") ? flags.get("controller-bin")
                                                     : (fs::path(executable_dir()) / "rwkv-controller").string();
    RWKV_CHECK(fs::exists(l.controller_bin), "rwkv-launch: ", l.controller_bin, " not found",
               "\n  ---> HINT: build rwkv-controller, or pass --controller-bin");
    if (l.listen.rfind("0.0.0.0:", 0) == 0 && l.advertise.empty()) {
      char host[256] = "localhost";
      ::gethostname(host, sizeof host - 1);
      l.advertise = host;
    }

    // Tokens: kept when the state directory has them (a relaunch of the same
    // job must match the controller database and anything already told).
    fs::create_directories(l.state_dir);
    fs::permissions(l.state_dir, fs::perms::owner_all, fs::perm_options::replace);
    for (const char* name : {"job.token", "admin.token"})
      if (!fs::exists(l.path(name))) write_token_file(l.path(name), generate_token());
    l.job_token = read_token_file(l.path("job.token"));
    l.admin_token = read_token_file(l.path("admin.token"));

    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    l.start_controller();
    std::printf("rwkv-launch: job %s, %d ranks; controller %s (log %s)\n", l.job.c_str(), l.np, l.rank_address.c_str(),
                l.path("controller.log").c_str());
    if (!l.http_address.empty())
      std::printf("rwkv-launch: web page http://%s/?token=$(cat %s)\n", l.http_address.c_str(), l.path("job.token").c_str());
    std::printf("rwkv-launch: RWKV_CONTROLLER=%s RWKV_ADMIN_TOKEN_FILE=%s rwkvctl status\n", l.rank_address.c_str(),
                l.path("admin.token").c_str());
    std::fflush(stdout);

    int exit_code = 1;
    int controller_restarts = 0;
    for (int attempt = 1;; ++attempt) {
      const int64_t generation_before = l.job_state().second;
      l.start_ranks(attempt, flags.rest());
      rwkv::log_info("launch: attempt ", attempt, " started (", l.launcher == "local" ? "local" : l.launcher, ")");
      std::string failure;
      bool done = false;
      // SIGINT/SIGTERM: the first asks for a final checkpoint and a clean
      // stop (as rwkvctl stop); a second one, or --stop-timeout, stops hard.
      bool stopping = false, hard_stop = false;
      double stop_deadline = 0.0;
      const auto now_s = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
      while (!done && failure.empty()) {
        sleep_s(flags.get_double("poll"));
        if (g_signal != 0) {
          const int sig = g_signal;
          g_signal = 0;
          if (!stopping && l.request_graceful_stop()) {
            rwkv::log_warn("launch: signal ", sig, ": the ranks write a final checkpoint and stop (up to ", stop_timeout,
                           " s; signal again to stop at once)");
            stopping = true;
            stop_deadline = now_s() + stop_timeout;
          } else {
            hard_stop = true;
            g_signal = sig;
            break;
          }
        }
        if (stopping && now_s() > stop_deadline) {
          rwkv::log_error("launch: the final checkpoint took more than --stop-timeout ", stop_timeout, " s");
          hard_stop = true;
          g_signal = SIGTERM;
          break;
        }
        // The controller itself died: start it again on the same port; the
        // ranks reconnect and the database still knows everything.
        if (std::optional<int> code = poll_exit(l.controller)) {
          RWKV_CHECK(++controller_restarts <= 5, "rwkv-launch: rwkv-controller keeps dying (status ", *code, "); see ",
                     l.path("controller.log"));
          rwkv::log_warn("launch: rwkv-controller exited with status ", *code, "; restarting it");
          l.start_controller();
        }
        auto [state, generation] = l.job_state();
        if (state == "failed" && generation > generation_before) failure = "the controller reports the job failed";
        // The ranks' exit: all of them (local) or the launcher (mpirun, srun).
        bool all_exited = true;
        for (pid_t& p : l.ranks) {
          if (p < 0) continue;
          std::optional<int> code = poll_exit(p);
          if (!code) {
            all_exited = false;
            continue;
          }
          p = -1;
          if (*code != 0 && failure.empty()) failure = str_cat("a rank process exited with status ", *code);
        }
        if (all_exited && failure.empty()) {
          std::tie(state, generation) = l.job_state();
          if (state == "completed" || state == "stopped") {
            done = true;
            exit_code = 0;
            rwkv::log_info("launch: job ", l.job, " ", state);
          } else {
            failure = str_cat("the ranks exited but the job is ", state.empty() ? "unknown" : state);
          }
        }
      }
      l.stop_ranks();
      if (stopping && done) {
        rwkv::log_info("launch: stopped cleanly after the final checkpoint");
        break;
      }
      if (stopping && !hard_stop) {  // asked to stop: never restarted
        rwkv::log_error("launch: the job did not stop cleanly (", failure, "); see ", l.path("ranks.log"));
        exit_code = 1;
        break;
      }
      if (hard_stop || g_signal != 0) {
        rwkv::log_warn("launch: signal ", static_cast<int>(g_signal), ": ranks and controller stopped");
        exit_code = 128 + g_signal;
        break;
      }
      if (done) break;
      if (attempt > max_restarts) {
        rwkv::log_error("launch: ", failure, "; no restarts left (", max_restarts, " allowed); see ",
                        l.path("ranks.log"));
        exit_code = 1;
        break;
      }
      rwkv::log_warn("launch: ", failure, "; restarting the ranks from the last committed checkpoint (restart ",
                     attempt, " of ", max_restarts, ")");
      sleep_s(flags.get_double("restart-delay"));
    }
    l.stop_controller();
    return exit_code;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-launch: internal error: %s\n", e.what());
    return 3;
  }
}
