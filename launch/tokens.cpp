#include "launch/tokens.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace rwkv::launch {

std::string generate_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    RWKV_CHECK(n > 0, "getrandom failed: ", std::strerror(errno), "\n  ---> HINT: the kernel's random source is unavailable");
    got += static_cast<size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(hex[b >> 4]);
    token.push_back(hex[b & 15]);
  }
  return token;
}

void write_token_file(const std::string& path, const std::string& token) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  RWKV_CHECK(fd >= 0, tmp, ": cannot create the token file: ", std::strerror(errno),
             "\n  ---> HINT: the state directory must be writable");
  const std::string text = token + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  RWKV_CHECK(ok, tmp, ": cannot write the token file: ", std::strerror(errno));
  RWKV_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename the token file into place: ",
             std::strerror(errno));
}

std::string read_token_file(const std::string& path) {
  struct stat st{};
  RWKV_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot read the token file: ", std::strerror(errno),
             "\n  ---> HINT: rwkv-launch writes <state-dir>/job.token and admin.token; pass the right path");
  if ((st.st_mode & 0077) != 0)
    log_warn(path, ": token file is readable by other users (mode ", std::oct, (st.st_mode & 0777), std::dec,
             "); chmod 600 it");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  const size_t begin = token.find_first_not_of(" \t\r\n");
  const size_t end = token.find_last_not_of(" \t\r\n");
  token = begin == std::string::npos ? "" : token.substr(begin, end - begin + 1);
  RWKV_CHECK(!token.empty(), path, ": the token file is empty\n  ---> HINT: it should hold the token rwkv-launch generated");
  RWKV_CHECK(token.find_first_of(" \t\r\n") == std::string::npos, path,
             ": a token file holds one token on one line\n  ---> HINT: regenerate it with rwkv-launch");
  return token;
}

bool tokens_equal(const std::string& a, const std::string& b) {
  // Length is not secret (tokens have a fixed length); content compared fully.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace rwkv::launch
