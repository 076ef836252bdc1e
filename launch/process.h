// Child processes for rwkv-launch (the controller, the rank launcher) and
// for tests: spawn with extra environment and a log file, each in its own
// process group so a whole tree (mpirun and its ranks) can be signalled.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rwkv::launch {

struct ProcessSpec {
  std::vector<std::string> argv;             // argv[0] is looked up in PATH
  std::map<std::string, std::string> env;    // added to (or replacing in) this process's environment
  std::string log_path;                      // "": inherit stdout/stderr; else both appended here
};

// Starts the process in a new process group (its pid is the group id).
// Throws naming the program when it cannot be started (not found, not
// executable): the error comes back from the child before exec returns.
pid_t spawn_process(const ProcessSpec& spec);
// The exit status once the process has ended (128 + signal when killed),
// nullopt while it runs. Reaps it.
std::optional<int> poll_exit(pid_t pid);
// Waits up to timeout_s (< 0: forever).
std::optional<int> wait_exit(pid_t pid, double timeout_s);
// SIGTERM to the group, then SIGKILL after grace_s; reaps the leader.
// Returns its exit status.
int terminate_group(pid_t pid, double grace_s);
// Splits on whitespace (no quoting: a template of plain words).
std::vector<std::string> split_words(const std::string& text);
// The directory of the running executable (/proc/self/exe).
std::string executable_dir();

}  // namespace rwkv::launch
