#include "launch/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace rwkv::launch {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace

pid_t spawn_process(const ProcessSpec& spec) {
  RWKV_CHECK(!spec.argv.empty(), "spawn_process: empty command");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    RWKV_CHECK(log_fd >= 0, spec.log_path, ": cannot open the log file: ", std::strerror(errno));
  }
  int pipe_fds[2];
  RWKV_CHECK(::pipe2(pipe_fds, O_CLOEXEC) == 0, "pipe failed: ", std::strerror(errno));

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    const int error = errno;
    (void)!::write(pipe_fds[1], &error, sizeof error);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(pipe_fds[1]);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    RWKV_FAIL("cannot start ", spec.argv[0], ": fork failed: ", std::strerror(fork_errno));
  }
  ::setpgid(pid, pid);  // also here: no race with a signal sent right after
  int child_errno = 0;
  const ssize_t n = ::read(pipe_fds[0], &child_errno, sizeof child_errno);  // EOF once exec succeeded
  ::close(pipe_fds[0]);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    RWKV_FAIL("cannot start '", spec.argv[0], "': ", std::strerror(child_errno),
              "\n  ---> HINT: give the full path, or put it in PATH");
  }
  return pid;
}

std::optional<int> poll_exit(pid_t pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return decode_status(status);
  if (r < 0 && errno == ECHILD) return 255;  // not ours any more: treat as gone
  return std::nullopt;
}

std::optional<int> wait_exit(pid_t pid, double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (std::optional<int> code = poll_exit(pid)) return code;
    if (timeout_s >= 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= timeout_s)
      return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int terminate_group(pid_t pid, double grace_s) {
  if (std::optional<int> code = poll_exit(pid)) {
    ::kill(-pid, SIGKILL);  // the leader is gone; its group may not be
    return *code;
  }
  ::kill(-pid, SIGTERM);
  if (std::optional<int> code = wait_exit(pid, grace_s)) {
    ::kill(-pid, SIGKILL);
    return *code;
  }
  ::kill(-pid, SIGKILL);
  return wait_exit(pid, -1).value_or(255);
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string executable_dir() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : self.parent_path().string();
}

}  // namespace rwkv::launch
