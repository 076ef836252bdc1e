// A minimal HTTP/1.1 server for the controller's monitoring: GET only,
// one request per connection (Connection: close), headers up to 16 KiB,
// 5 s to send them. Enough for a Prometheus scrape, a browser page and its
// JSON polls on a trusted network, with nothing to install.
//
// Why not a library: Debian's libmicrohttpd or cpp-httplib would do, but the
// three GET endpoints need ~200 lines, and this keeps the controller's
// dependencies to gRPC, protobuf and SQLite.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace rwkv::launch {

struct HttpRequest {
  std::string method;
  std::string path;                            // without the query
  std::map<std::string, std::string> params;   // query parameters, percent-decoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string peer;                            // "ip:port"
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Binds host:port (port 0: any free port) and starts serving.
  HttpServer(const std::string& address, Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::string address() const;  // host:bound port
  // Stops accepting and waits for the connections in progress.
  void stop();

 private:
  void accept_loop();
  void serve(int fd, std::string peer);

  Handler handler_;
  std::string host_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
};

// "a%20b+c" -> "a b c".
std::string url_decode(const std::string& text);
// "host:port" split; errors name the address and the expectation.
void split_host_port(const std::string& address, std::string* host, int* port, const char* what);

}  // namespace rwkv::launch
