#include "launch_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checkpoint/manifest.h"
#include "core/error.h"
#include "launch/checkpoint_commit.h"
#include "launch/http_server.h"
#include "launch/tokens.h"

namespace rwkv::launch::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rwkv-launch-test-XXXXXX";
  RWKV_CHECK(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string fake_shard_name(int rank) {
  char name[32];
  std::snprintf(name, sizeof name, "rank%05d.shard", rank);
  return name;
}

std::string fake_shard_bytes(int64_t step, int rank) {
  std::string bytes = str_cat("fake shard of rank ", rank, " at step ", step, "\n");
  bytes.append(static_cast<size_t>(100 + 37 * rank), static_cast<char>('a' + rank % 26));
  return bytes;
}

namespace {

std::string hex16(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

void write_file(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  fs::rename(tmp, path);
}

}  // namespace

std::vector<ShardFile> write_fake_shard(const std::string& root, int64_t step, int rank, int world_size) {
  const std::string partial = checkpoint_partial_dir(root, step);
  fs::create_directories(partial);
  std::vector<ShardFile> files;
  const std::string bytes = fake_shard_bytes(step, rank);
  write_file(partial + "/" + fake_shard_name(rank), bytes);
  files.push_back(describe_file(partial, fake_shard_name(rank)));
  if (rank == 0) {
    checkpoint::Manifest m;
    m.step = step;
    m.tokens = step * 1000;
    m.config_digest = "0123456789abcdef";
    m.config_yaml = "fake: true\n";
    for (int r = 0; r < world_size; ++r) {
      const std::string b = fake_shard_bytes(step, r);
      m.files.push_back({fake_shard_name(r), r, b.size(), hex16(XXH3_64bits(b.data(), b.size()))});
    }
    write_file(partial + "/" + checkpoint::kManifestName, m.to_json());
    files.push_back(describe_file(partial, checkpoint::kManifestName));
  }
  return files;
}

std::vector<int64_t> committed_steps(const std::string& root) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 13 && name.rfind("step_", 0) == 0 && fs::exists(e.path() / checkpoint::kCommitMarker))
      steps.push_back(std::stoll(name.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

TestController::TestController(const std::string& db_path) : TestController(db_path, ServerOptions()) {}

TestController::TestController(const std::string& db_path, const ServerOptions& o) : options(o) {
  options.controller.db_path = db_path;
  if (options.job_token.empty()) options.job_token = generate_token();
  if (options.admin_token.empty()) options.admin_token = generate_token();
  server = std::make_unique<ControllerServer>(options);
}

ClientOptions TestController::client(int rank, int world_size, const std::string& job) const {
  ClientOptions o;
  o.address = address();
  o.job = job;
  o.token = options.job_token;
  o.rank = rank;
  o.world_size = world_size;
  o.heartbeat_s = 0.01;
  o.unreachable_timeout_s = 5;
  o.rpc_timeout_s = 5;
  return o;
}

int http_get(const std::string& address, const std::string& target, std::string* body, const std::string& bearer) {
  std::string host;
  int port = 0;
  split_host_port(address, &host, &port, "test address");
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  RWKV_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "cannot connect to ", address);
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + address + "\r\n";
  if (!bearer.empty()) request += "Authorization: Bearer " + bearer + "\r\n";
  request += "\r\n";
  (void)!::send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  const size_t head_end = response.find("\r\n\r\n");
  RWKV_CHECK(head_end != std::string::npos && response.rfind("HTTP/1.1 ", 0) == 0, "bad HTTP response: ", response);
  *body = response.substr(head_end + 4);
  return std::stoi(response.substr(9, 3));
}

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  RWKV_CHECK(pipe != nullptr, "popen failed for ", command_line);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool wait_until(const std::function<bool()>& pred, double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  while (!pred()) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace rwkv::launch::testing
