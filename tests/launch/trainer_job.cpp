#include "trainer_job.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "launch/grpc_util.h"
#include "launch/process.h"
#include "launch/tokens.h"
#include "launch_test_util.h"

namespace rwkv::launch::testing {

namespace fs = std::filesystem;

namespace {

std::string tail(const std::string& text, size_t bytes) {
  return text.size() > bytes ? "..." + text.substr(text.size() - bytes) : text;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string prepare_chaos_data(const std::string& dir) {
  // ~60 KB of sentences from a small vocabulary (a fixed LCG): enough
  // ctx_len windows that no step repeats another's batch.
  static const char* kWords[] = {"the", "a", "river", "stone", "light", "over", "under", "quiet", "house", "walked",
                                 "slowly", "and", "then", "we", "saw", "old", "green", "hills", "night", "was",
                                 "long", "of", "bright", "rain", "on", "road", "she", "he", "said", "nothing",
                                 "morning", "came", "early", "with", "cold", "wind", "in", "town", "to", "far"};
  const size_t words = sizeof kWords / sizeof kWords[0];
  uint64_t state = 12345;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  fs::create_directories(dir + "/data");
  const std::string jsonl = dir + "/data/corpus.jsonl";
  {
    std::ofstream out(jsonl);
    for (int doc = 0; doc < 300; ++doc) {
      std::string text;
      for (uint64_t s = 0, n = 3 + next(5); s < n; ++s) {
        std::string sentence;
        for (uint64_t w = 0, m = 5 + next(8); w < m; ++w) {
          if (w > 0) sentence += ' ';
          sentence += kWords[next(words)];
        }
        sentence[0] = static_cast<char>(sentence[0] - 'a' + 'A');
        if (s > 0) text += ' ';
        text += sentence;
        text += '.';
      }
      out << "{\"text\": \"" << text << "\"}\n";
    }
  }
  const std::string prefix = dir + "/data/train";
  const CommandResult r = run_command(std::string(RWKV_DATA_BIN) + " prepare --tokenizer bytes --input " + jsonl +
                                      " --output " + prefix + " --overwrite --progress-seconds 0");
  RWKV_CHECK(r.exit_code == 0, "rwkv-data prepare failed:\n", r.output);
  return prefix;
}

bool have_mpirun() { return run_command("command -v mpirun").exit_code == 0; }

bool is_live_process(pid_t pid, const std::string& fragment) {
  if (pid <= 0) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string stat = read_bytes(proc + "/stat");
  const size_t paren = stat.rfind(')');
  if (stat.empty() || paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z') return false;
  std::string cmdline = read_bytes(proc + "/cmdline");
  for (char& c : cmdline)
    if (c == '\0') c = ' ';
  return cmdline.find(fragment) != std::string::npos;
}

TrainerJob::TrainerJob(std::string dir, TrainerJobSpec spec) : dir_(std::move(dir)), spec_(std::move(spec)) {
  fs::create_directories(dir_);
}

TrainerJob::~TrainerJob() {
  // rwkv-launch stops its ranks and controller on SIGTERM; then anything
  // it could not reach (a rank mpirun lost, a stopped process) is killed
  // by pid, each checked to still be ours.
  if (launch_ > 0) {
    status();  // learn the ranks' pids, should the test have failed before it asked
    terminate_group(launch_, 15);
  }
  for (pid_t p : rank_pids_)
    if (is_live_process(p, "rwkv-train")) {
      ::kill(p, SIGKILL);
      ::kill(p, SIGCONT);
    }
  controller_pids_.insert(controller_pid());
  for (pid_t p : controller_pids_)
    if (is_live_process(p, "rwkv-controller")) ::kill(p, SIGKILL);
}

void TrainerJob::start() {
  RWKV_CHECK(launch_ < 0, "TrainerJob::start called twice");
  // Yielding while waiting for a message: with other jobs on the cores
  // (ctest -j), busy-polling ranks made a 3 s job take 15-45 s.
  const std::string launcher =
      "mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np {np} "
      "-x RWKV_CONTROLLER -x RWKV_JOB -x RWKV_JOB_TOKEN -x RWKV_JOB_TOKEN_FILE -x RWKV_TLS_CA -x RWKV_ATTEMPT";
  std::string command = str_cat("cd ", quoted(dir_), " && exec ", RWKV_LAUNCH_BIN, " --job chaos --np 2",
                                " --state-dir state --poll 0.1 --restart-delay 0.2 --max-restarts ", spec_.max_restarts,
                                " --launcher ", quoted(launcher), " -- ", RWKV_TRAIN_BIN, " --config ",
                                RWKV_SOURCE_DIR, "/configs/tiny.yaml");
  // A tiny model (2 layers x 64 channels, 32 tokens, 4 sequences) split over
  // tp = 2: a step takes milliseconds, yet both ranks hold real shards.
  const std::vector<std::string> sets = {
      "data.train=[" + spec_.data_prefix + "]", "model.n_layer=2", "model.n_embd=64", "model.ctx_len=32",
      "train.micro_batch=4", str_cat("train.steps=", spec_.steps), "train.warmup_steps=10", "train.log_interval=50",
      "train.peak_gflops=1", "parallel.tp=2", str_cat("checkpoint.interval=", spec_.interval), "checkpoint.keep_last=0",
      "checkpoint.dir=ckpt", "controller.heartbeat_s=0.02", "device=" + spec_.device,
      str_cat("controller.heartbeat_timeout_s=", spec_.heartbeat_timeout_s)};
  for (const std::string& s : sets) command += " --set " + quoted(s);
  ProcessSpec process;
  process.argv = {"/bin/sh", "-c", command};
  process.env = spec_.env;
  process.env["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
  process.env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
  process.log_path = path("launch.log");
  launch_ = spawn_process(process);
}

std::optional<int> TrainerJob::wait(double timeout_s) {
  std::optional<int> code = wait_exit(launch_, timeout_s);
  if (code) launch_ = -1;
  return code;
}

pid_t TrainerJob::controller_pid() const {
  const std::string text = read("state/controller.json");
  if (text.empty()) return -1;
  try {
    return nlohmann::json::parse(text).at("pid").get<pid_t>();
  } catch (const std::exception&) {
    return -1;  // being rewritten
  }
}

std::optional<StatusReply> TrainerJob::status() {
  if (!admin_) {
    const std::string ready = read("state/controller.json");
    if (ready.empty() || !fs::exists(path("state/admin.token"))) return std::nullopt;
    try {
      address_ = nlohmann::json::parse(ready).at("grpc").get<std::string>();
    } catch (const std::exception&) {
      return std::nullopt;
    }
    admin_token_ = read_token_file(path("state/admin.token"));
    admin_ = Admin::NewStub(make_channel(address_, ""));
  }
  controller_pids_.insert(controller_pid());
  grpc::ClientContext context;
  context.AddMetadata(kTokenMetadataKey, admin_token_);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  StatusRequest q;
  q.set_job("chaos");
  StatusReply reply;
  if (!admin_->Status(&context, q, &reply).ok()) return std::nullopt;
  for (const RankStatus& r : reply.ranks())
    if (r.pid() > 0) rank_pids_.insert(static_cast<pid_t>(r.pid()));
  return reply;
}

std::vector<CheckpointInfo> TrainerJob::checkpoints() {
  if (!admin_ && !status()) return {};
  grpc::ClientContext context;
  context.AddMetadata(kTokenMetadataKey, admin_token_);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  CheckpointsRequest q;
  q.set_job("chaos");
  CheckpointsReply reply;
  if (!admin_->Checkpoints(&context, q, &reply).ok()) return {};
  return {reply.checkpoints().begin(), reply.checkpoints().end()};
}

std::optional<StatusReply> TrainerJob::wait_for(const std::function<bool(const StatusReply&)>& pred,
                                                double timeout_s) {
  std::optional<StatusReply> last;
  const bool ok = wait_until(
      [&] {
        std::optional<StatusReply> s = status();
        if (s) last = s;
        return s && pred(*s);
      },
      timeout_s);
  return ok ? last : std::nullopt;
}

std::string TrainerJob::read(const std::string& relative) const { return read_bytes(path(relative)); }

std::string TrainerJob::diagnostics() const {
  return "\n--- launch.log:\n" + tail(read("launch.log"), 3000) + "\n--- controller.log:\n" +
         tail(read("state/controller.log"), 4000) + "\n--- ranks.log:\n" + tail(read("state/ranks.log"), 4000);
}

JobRecord TrainerJob::job_record() const {
  ControllerStore store(path("state/controller.db"));
  for (JobRecord& j : store.load_jobs())
    if (j.id == "chaos") return j;
  return {};
}

std::map<int64_t, double> TrainerJob::losses() const {
  ControllerStore store(path("state/controller.db"));
  std::map<int64_t, double> out;
  for (const MetricRecord& m : store.query_metrics("chaos", {"loss"}, 0, 0)) out[m.step] = m.value;
  return out;
}

}  // namespace rwkv::launch::testing
