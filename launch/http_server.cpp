#include "launch/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace rwkv::launch {

namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr int kMaxConnections = 32;

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

void send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away: nothing to do
    done += static_cast<size_t>(n);
  }
}

void send_response(int fd, const HttpResponse& r) {
  std::string head = str_cat("HTTP/1.1 ", r.status, " ", reason_phrase(r.status), "\r\nContent-Type: ", r.content_type,
                             "\r\nContent-Length: ", r.body.size(),
                             "\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n");
  send_all(fd, head + r.body);
}

std::string peer_name(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return str_cat(host, ":", port);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string url_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

void split_host_port(const std::string& address, std::string* host, int* port, const char* what) {
  const size_t colon = address.rfind(':');
  bool ok = colon != std::string::npos && colon > 0 && colon + 1 < address.size();
  long value = -1;
  if (ok) {
    char* end = nullptr;
    value = std::strtol(address.c_str() + colon + 1, &end, 10);
    ok = *end == '\0' && value >= 0 && value <= 65535;
  }
  RWKV_CHECK(ok, what, " '", address, "' is not host:port\n  ---> HINT: e.g. 127.0.0.1:50051 (port 0 picks a free port)");
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  *port = static_cast<int>(value);
}

HttpServer::HttpServer(const std::string& address, Handler handler) : handler_(std::move(handler)) {
  split_host_port(address, &host_, &port_, "HTTP address");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found);
  RWKV_CHECK(rc == 0 && found != nullptr, "HTTP address '", address, "': cannot resolve ", host_, ": ",
             ::gai_strerror(rc), "\n  ---> HINT: use an IP address of this machine, e.g. 127.0.0.1");
  listen_fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool bound = listen_fd_ >= 0 && ::bind(listen_fd_, found->ai_addr, found->ai_addrlen) == 0 &&
                     ::listen(listen_fd_, 64) == 0;
  const int bind_errno = errno;
  ::freeaddrinfo(found);
  if (!bound) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    RWKV_FAIL("HTTP address '", address, "': cannot listen: ", std::strerror(bind_errno),
              "\n  ---> HINT: pick a free port (0 = any) and an address of this machine");
  }
  sockaddr_storage bound_addr{};
  socklen_t len = sizeof bound_addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound_addr), &len);
  port_ = bound_addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound_addr)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&bound_addr)->sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::address() const {
  return host_.find(':') != std::string::npos ? str_cat("[", host_, "]:", port_) : str_cat(host_, ":", port_);
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return active_ == 0; });
}

void HttpServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;  // wakes up to notice stop()
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_ >= kMaxConnections) {
        send_response(fd, {503, "text/plain; charset=utf-8", "too many connections\n"});
        ::close(fd);
        continue;
      }
      ++active_;
    }
    // One thread per connection: an idle browser pre-connection must not
    // hold up a Prometheus scrape. stop() waits for them (each ends in 5 s).
    std::thread([this, fd, peer = peer_name(addr)] {
      try {
        serve(fd, peer);
      } catch (const std::exception& e) {
        log_warn("http: ", peer, ": ", e.what());
      }
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) idle_.notify_all();
    }).detach();
  }
}

void HttpServer::serve(int fd, std::string peer) {
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  // The whole request head within 5 s of the connection, not 5 s per recv:
  // a client trickling a byte at a time would otherwise hold a slot for hours.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string data;
  char buffer[4096];
  while (data.find("\r\n\r\n") == std::string::npos) {
    if (data.size() > kMaxHeaderBytes) return send_response(fd, {400, "text/plain; charset=utf-8", "headers too large\n"});
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;  // too slow: dropped
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed before a full request
    data.append(buffer, static_cast<size_t>(n));
  }
  HttpRequest request;
  request.peer = std::move(peer);
  const size_t line_end = data.find("\r\n");
  const std::string line = data.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos)
    return send_response(fd, {400, "text/plain; charset=utf-8", "bad request line\n"});
  request.method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const size_t q = target.find('?');
  request.path = url_decode(target.substr(0, q));
  if (q != std::string::npos) {
    std::string query = target.substr(q + 1);
    size_t start = 0;
    while (start <= query.size()) {
      size_t amp = query.find('&', start);
      if (amp == std::string::npos) amp = query.size();
      const std::string pair = query.substr(start, amp - start);
      const size_t eq = pair.find('=');
      if (!pair.empty())
        request.params[url_decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1));
      start = amp + 1;
    }
  }
  size_t pos = line_end + 2;
  while (pos < data.size()) {
    const size_t end = data.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    const std::string header = data.substr(pos, end - pos);
    const size_t colon = header.find(':');
    if (colon != std::string::npos) {
      std::string name = header.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t value_start = header.find_first_not_of(' ', colon + 1);
      request.headers[name] = value_start == std::string::npos ? "" : header.substr(value_start);
    }
    pos = end + 2;
  }
  if (request.method != "GET")
    return send_response(fd, {405, "text/plain; charset=utf-8", "only GET\n"});
  HttpResponse response;
  try {
    response = handler_(request);
  } catch (const std::exception& e) {
    response = {500, "text/plain; charset=utf-8", str_cat(e.what(), "\n")};
  }
  send_response(fd, response);
}

}  // namespace rwkv::launch
