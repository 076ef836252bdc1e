#include "planner/cpu_validation.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "data/binidx_writer.h"
#include "core/file_io.h"

namespace rwkv::planner {

namespace fs = std::filesystem;

namespace {
// Names a layout's config and checkpoint directory: "dp2_tp2_pp2", "dp2_tp1_pp1_zero".
std::string run_tag(const Layout& l) { return str_cat("dp", l.dp, "_tp", l.tp, "_pp", l.pp, l.zero ? "_zero" : ""); }
}  // namespace

double CpuRun::steady_step_ms() const {
  RWKV_CHECK(!step_ms.empty(), "rwkv-train logged no step");
  std::vector<double> t(step_ms.size() > 1 ? step_ms.begin() + 1 : step_ms.begin(), step_ms.end());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string write_validation_dataset(const std::string& dir, int64_t vocab, int64_t tokens) {
  fs::create_directories(dir);
  const std::string prefix = (fs::path(dir) / "tokens").string();
  if (rwkv::file_exists(prefix + ".idx")) return prefix;
  data::BinIdxWriter writer(prefix, vocab <= 65535 ? data::TokenDType::U16 : data::TokenDType::I32);
  std::vector<int32_t> doc(static_cast<size_t>(tokens));
  uint64_t x = 88172645463325252ull;  // xorshift64: the same stream every time
  for (int32_t& t : doc) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    t = static_cast<int32_t>(1 + x % static_cast<uint64_t>(vocab - 1));  // 0 ends a document
  }
  writer.add_document(doc);
  writer.commit();
  return prefix;
}

std::string validation_config(const CpuRunSpec& s) {
  const Layout& l = s.layout;
  const std::string tag = run_tag(l);
  std::ostringstream y;
  y << "model: {n_layer: " << s.model.n_layer << ", n_embd: " << s.model.n_embd << ", vocab_size: " << s.model.vocab_size
    << ", ctx_len: " << s.model.ctx_len << ", dim_ffn: " << s.model.dim_ffn << "}\n"
    << "data: {train: [" << s.data_prefix << "], tokenizer: bytes, sampler: sequential}\n"
    << "train: {micro_batch: " << l.micro_batch << ", grad_accum: " << l.grad_accum << ", steps: " << s.steps
    << ", lr_init: 1e-4, lr_final: 1e-5, log_interval: 1, recompute: " << (l.recompute ? "true" : "false")
    << ", peak_gflops: " << s.peak_gflops << "}\n"
    << "parallel: {dp: " << l.dp << ", tp: " << l.tp << ", pp: " << l.pp << ", zero: " << (l.zero ? "true" : "false")
    << ", schedule: " << (l.schedule == trainer::PipelineSchedule::GPipe ? "gpipe" : "1f1b")
    << ", vocab_pad_multiple: " << l.vocab_pad_multiple
    << (s.bucket_mib > 0 ? str_cat(", bucket_mib: ", s.bucket_mib) : std::string()) << "}\n"
    << "checkpoint: {dir: " << (fs::path(s.workdir) / ("ckpt_" + tag)).string()
    << ", resume: never, interval: 0, keep_last: 1}\n";
  return y.str();
}

CpuRun run_rwkv_train(const CpuRunSpec& s) {
  const Layout& l = s.layout;
  const std::string tag = run_tag(l);
  const std::string config = (fs::path(s.workdir) / ("config_" + tag + ".yaml")).string();
  rwkv::write_file_atomically(config, validation_config(s));
  std::string cmd = s.rwkv_train + " --config " + config + " --log-level info";
  std::string env = "env", forward;
  for (const std::string& e : s.env) {
    env += " " + e;
    forward += " -x " + e.substr(0, e.find('='));
  }
  if (l.world() > 1) {
    // Root may run mpirun in containers; ranks of one node use its cores (train.threads 0).
    cmd = env + " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + s.mpirun + " --allow-run-as-root --oversubscribe" +
          forward + " -np " + std::to_string(l.world()) + " " + cmd;
  } else {
    cmd = env + " " + cmd;
  }
  cmd += " 2>&1";
  CpuRun run;
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  RWKV_CHECK(pipe != nullptr, "cannot start: ", cmd);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) run.log += buffer;
  const int status = ::pclose(pipe);
  RWKV_CHECK(status == 0, "rwkv-train failed (status ", status, "): ", cmd, "\n", run.log);

  // step=3/4 ... ms=812.3 ...
  static const std::regex step_re(R"(step=\d+/\d+ .* ms=([0-9.]+))");
  // memory: peak resident per rank: rank 0 612MiB, rank 1 598MiB   |   ... peak memory 640MiB
  static const std::regex ranks_re(R"(memory: peak resident per rank: (.*))");
  static const std::regex rank_re(R"(rank \d+ (\d+)MiB)");
  static const std::regex single_re(R"(peak memory (\d+)MiB)");
  std::istringstream lines(run.log);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, m, step_re)) run.step_ms.push_back(std::stod(m[1]));
    if (std::regex_search(line, m, ranks_re)) {
      const std::string list = m[1];
      for (std::sregex_iterator it(list.begin(), list.end(), rank_re), end; it != end; ++it)
        run.peak_bytes.push_back(std::stod((*it)[1]) * 1024 * 1024);
    } else if (l.world() == 1 && std::regex_search(line, m, single_re)) {
      run.peak_bytes = {std::stod(m[1]) * 1024 * 1024};
    }
  }
  RWKV_CHECK(!run.step_ms.empty() && static_cast<int64_t>(run.peak_bytes.size()) == l.world(),
             "could not read the step times and ", l.world(), " peak memories from rwkv-train's log: ", cmd, "\n", run.log);
  return run;
}

}  // namespace rwkv::planner
