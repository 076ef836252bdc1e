// The command line that starts a job's ranks, from rwkv-launch's --launcher
// template and its placement flags. A pure function, so the tests can check
// every combination without starting anything.
//
//   template  "mpirun -np {np} -x RWKV_CONTROLLER ..."   ({np}, {job} replaced)
//   hostfile  mpirun: --hostfile FILE
//   ranks per node  mpirun: --map-by ppr:N:node; srun: --ntasks-per-node N
//   env       NAME (passed on as it is) or NAME=VALUE (set for the ranks):
//             mpirun: -x NAME / -x NAME=VALUE; srun: --export=ALL,NAME[=VALUE],...;
//             local: NAME=VALUE set in each rank's environment
// The placement flags go right after the launcher program's name, so a
// template's own flags (and the trainer command after them) keep their place.
// A flag the launcher kind cannot honour is an error with a hint.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace rwkv::launch {

enum class LauncherKind { Local, Mpirun, Srun, Other };
// By the template's first word: "local", mpirun/mpiexec/orterun, srun, or anything else.
LauncherKind launcher_kind(const std::string& launcher_template);

struct Placement {
  std::string hostfile;             // "" = none
  int ranks_per_node = 0;           // 0 = the launcher's default
  std::vector<std::string> env;     // NAME or NAME=VALUE
};

// Parses --env's comma-separated list ("A,B=1"); names must be valid
// environment variable names. Throws naming the bad entry.
std::vector<std::string> parse_env_list(const std::string& list);

// The argv of the launcher (without the trainer command) for np ranks of job.
// Empty for LauncherKind::Local (rwkv-launch starts those processes itself).
std::vector<std::string> launcher_argv(const std::string& launcher_template, int np, const std::string& job,
                                       const Placement& placement);

// The NAME=VALUE entries of placement.env, for local ranks' environments.
std::map<std::string, std::string> env_assignments(const Placement& placement);

}  // namespace rwkv::launch
