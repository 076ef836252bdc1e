#include "launch/launcher_command.h"

#include <cctype>

#include "core/error.h"
#include "launch/process.h"

namespace rwkv::launch {

namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool valid_env_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

}  // namespace

LauncherKind launcher_kind(const std::string& launcher_template) {
  if (launcher_template == "local") return LauncherKind::Local;
  const std::vector<std::string> words = split_words(launcher_template);
  if (words.empty()) return LauncherKind::Other;
  const std::string program = basename_of(words.front());
  if (program == "mpirun" || program == "mpiexec" || program == "orterun") return LauncherKind::Mpirun;
  if (program == "srun") return LauncherKind::Srun;
  return LauncherKind::Other;
}

std::vector<std::string> parse_env_list(const std::string& list) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t comma = list.find(',', begin);
    const std::string entry = list.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    if (!entry.empty()) {
      const std::string name = entry.substr(0, entry.find('='));
      RWKV_CHECK(valid_env_name(name), "rwkv-launch: --env entry '", entry, "' does not start with a variable name",
                 "\n  ---> HINT: NAME or NAME=VALUE, comma-separated, e.g. --env NCCL_DEBUG=WARN,OMP_NUM_THREADS");
      out.push_back(entry);
    }
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

std::vector<std::string> launcher_argv(const std::string& launcher_template, int np, const std::string& job,
                                       const Placement& placement) {
  const LauncherKind kind = launcher_kind(launcher_template);
  if (kind == LauncherKind::Local) {
    RWKV_CHECK(placement.hostfile.empty(), "rwkv-launch: --hostfile needs an mpirun launcher; --launcher local runs",
               " every rank on this machine\n  ---> HINT: drop --launcher local (mpirun is the default)");
    RWKV_CHECK(placement.ranks_per_node == 0, "rwkv-launch: --ranks-per-node needs an mpirun or srun launcher",
               "\n  ---> HINT: drop --launcher local (mpirun is the default)");
    return {};
  }
  std::vector<std::string> argv =
      split_words(replace_all(replace_all(launcher_template, "{np}", std::to_string(np)), "{job}", job));
  RWKV_CHECK(!argv.empty(), "rwkv-launch: --launcher is empty\n  ---> HINT: mpirun, srun ..., or local");
  const bool placed = !placement.hostfile.empty() || placement.ranks_per_node > 0 || !placement.env.empty();
  RWKV_CHECK(kind != LauncherKind::Other || !placed, "rwkv-launch: --hostfile, --ranks-per-node and --env work with ",
             "mpirun and srun launchers, not '", argv.front(), "'\n  ---> HINT: put the equivalent options into ",
             "the --launcher template");
  std::vector<std::string> extra;
  if (kind == LauncherKind::Mpirun) {
    if (!placement.hostfile.empty()) extra.insert(extra.end(), {"--hostfile", placement.hostfile});
    if (placement.ranks_per_node > 0)
      extra.insert(extra.end(), {"--map-by", "ppr:" + std::to_string(placement.ranks_per_node) + ":node"});
    for (const std::string& e : placement.env) extra.insert(extra.end(), {"-x", e});
  } else {  // srun: the allocation is the hostfile
    RWKV_CHECK(placement.hostfile.empty(), "rwkv-launch: --hostfile does not apply to srun (Slurm places the ranks ",
               "on the job's allocation)\n  ---> HINT: choose the nodes with sbatch --nodes / --nodelist");
    if (placement.ranks_per_node > 0)
      extra.insert(extra.end(), {"--ntasks-per-node", std::to_string(placement.ranks_per_node)});
    if (!placement.env.empty()) {
      std::string exports = "--export=ALL";
      for (const std::string& e : placement.env) exports += "," + e;
      extra.push_back(exports);
    }
  }
  argv.insert(argv.begin() + 1, extra.begin(), extra.end());
  return argv;
}

std::map<std::string, std::string> env_assignments(const Placement& placement) {
  std::map<std::string, std::string> out;
  for (const std::string& e : placement.env) {
    const size_t eq = e.find('=');
    if (eq != std::string::npos) out[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return out;
}

}  // namespace rwkv::launch
