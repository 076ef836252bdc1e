// Clients that are wrong, broken or slow do no harm to a running job. A
// rank trains (heartbeats) against an in-process controller the whole time
// while others send: bytes that are not HTTP/2, a gRPC call whose payload is
// not a protobuf, an oversized message, well-formed requests with invalid
// fields (job name, rank, steps, sessions, world size), and calls or HTTP
// requests that are never finished. Each is refused or dropped; the job
// keeps its generation, its rank stays alive, and the controller answers
// everyone else at once. (Missing and wrong tokens: test_controller_grpc.cpp.)
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "launch/controller.grpc.pb.h"
#include "launch/controller_client.h"
#include "launch/grpc_util.h"
#include "launch/http_server.h"
#include "launch/tokens.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A TCP connection to host:port; -1 if it cannot connect.
int connect_to(const std::string& address) {
  std::string host;
  int port = 0;
  split_host_port(address, &host, &port, "test address");
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Reads until the peer closes (true) or 10 s pass (false).
bool closed_by_peer(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

// A rank of a one-rank job that trains in the background, heartbeating
// every step, until stopped; it records any command other than NONE.
class TrainingRank {
 public:
  TrainingRank(const testing::TestController& c, const std::string& ckpt) : client_(c.client(0, 1, "job")) {
    RankInfo info;
    info.config_digest = "d";
    info.total_steps = 1000000;
    info.checkpoint_dir = ckpt;
    info.checkpoint_interval = 0;
    client_.register_rank(info);
    thread_ = std::thread([this] {
      while (!stop_) {
        const ControllerCommand cmd = client_.heartbeat(++step_, {{"loss", 1.0}}, true);
        if (cmd.stop_now()) told_to_stop_ = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  ~TrainingRank() {
    stop_ = true;
    thread_.join();
  }
  int64_t step() const { return step_; }
  bool told_to_stop() const { return told_to_stop_; }

 private:
  ControllerClient client_;
  std::atomic<int64_t> step_{0};
  std::atomic<bool> stop_{false}, told_to_stop_{false};
  std::thread thread_;
};

std::unique_ptr<grpc::ClientContext> context_with(const std::string& token, double timeout_s = 5) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->AddMetadata(kTokenMetadataKey, token);
  c->set_deadline(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  return c;
}

// A unary call with raw bytes as the request.
grpc::Status raw_call(grpc::GenericStub& stub, const std::string& method, const std::string& token,
                      const std::string& bytes) {
  auto context = context_with(token);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(context.get(), method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

// The job is untouched: still generation 1, running, its rank alive and
// moving, and the controller answers a status call quickly.
void expect_job_unharmed(testing::TestController& c, const TrainingRank& rank) {
  const int64_t step = rank.step();
  ASSERT_TRUE(testing::wait_until([&] { return c.state().status("job").step() > step; }, 10));
  auto admin = Admin::NewStub(make_channel(c.address(), ""));
  StatusReply st;
  const double start = now_s();
  ASSERT_TRUE(admin->Status(context_with(c.options.job_token).get(), StatusRequest(), &st).ok());
  EXPECT_LT(now_s() - start, 2.0);
  EXPECT_EQ(st.job(), "job");
  EXPECT_EQ(st.state(), "running");
  EXPECT_EQ(st.generation(), 1);
  EXPECT_EQ(st.ranks_alive(), 1);
  EXPECT_FALSE(rank.told_to_stop());
}

TEST(HostileClients, MalformedRequestsAreRefusedAndTheJobGoesOn) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  TrainingRank rank(c, dir.file("ckpt"));
  const std::string token = c.options.job_token;

  // Not HTTP/2 at all: the connection is closed.
  for (const std::string& junk : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(5000, '\xff')}) {
    const int fd = connect_to(c.address());
    ASSERT_GE(fd, 0);
    (void)!::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_peer(fd));
    ::close(fd);
  }

  auto channel = make_channel(c.address(), "");
  grpc::GenericStub generic(channel);
  // A gRPC call whose payload is not a RegisterRequest.
  grpc::Status s = raw_call(generic, "/rwkv.launch.Worker/Register", token, std::string("\xff\xff\xff\xff\x0f", 5));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL) << s.error_message();  // gRPC's: our handler never runs
  // A method that does not exist.
  s = raw_call(generic, "/rwkv.launch.Worker/Explode", token, "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // A message over gRPC's 4 MiB limit.
  HeartbeatRequest huge;
  huge.set_job("job");
  huge.add_points()->set_name(std::string(5 << 20, 'x'));
  s = raw_call(generic, "/rwkv.launch.Worker/Heartbeat", token, huge.SerializeAsString());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();

  // Well-formed requests with invalid fields, each refused with a reason.
  auto worker = Worker::NewStub(channel);
  auto reg = [&](const std::function<void(RegisterRequest&)>& change) {
    RegisterRequest q;
    q.set_job("job");
    q.set_rank(0);
    q.set_world_size(1);
    q.set_total_steps(1000000);
    q.set_checkpoint_dir(dir.file("ckpt"));
    q.set_config_digest("d");
    change(q);
    RegisterReply reply;
    return worker->Register(context_with(token).get(), q, &reply);
  };
  struct Case {
    const char* what;
    std::function<void(RegisterRequest&)> change;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"job name", [](RegisterRequest& q) { q.set_job("../etc"); }, "is not valid"},
      {"rank", [](RegisterRequest& q) { q.set_rank(1); }, "expected 0 <= rank < world_size"},
      {"negative step", [](RegisterRequest& q) { q.set_step(-5); }, "must be >= 0"},
      {"relative dir", [](RegisterRequest& q) { q.set_checkpoint_dir("ckpt"); }, "must be absolute"},
      {"world size", [](RegisterRequest& q) { q.set_world_size(2000000000); }, "world_size"},
  };
  for (const Case& k : cases) {
    s = reg(k.change);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << k.what;
    EXPECT_NE(s.error_message().find(k.message), std::string::npos) << k.what << ": " << s.error_message();
  }
  HeartbeatRequest hb;
  HeartbeatReply hb_reply;
  hb.set_job("nope");
  EXPECT_EQ(worker->Heartbeat(context_with(token).get(), hb, &hb_reply).error_code(), grpc::StatusCode::NOT_FOUND);
  hb.set_job("job");
  hb.set_rank(7);
  EXPECT_EQ(worker->Heartbeat(context_with(token).get(), hb, &hb_reply).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A made-up session for the live rank: told it is superseded; the real
  // process is not affected.
  hb.set_rank(0);
  hb.set_session("not-a-session");
  hb.set_step(999999);
  ASSERT_TRUE(worker->Heartbeat(context_with(token).get(), hb, &hb_reply).ok());
  EXPECT_EQ(hb_reply.command().kind(), Command::STOP);
  EXPECT_NE(hb_reply.command().reason().find("superseded"), std::string::npos);
  AckCheckpointRequest ack;
  AckCheckpointReply ack_reply;
  ack.set_job("job");
  ack.set_session("not-a-session");
  ack.set_step(5);
  EXPECT_EQ(worker->AckCheckpoint(context_with(token).get(), ack, &ack_reply).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  FinishRequest finish;
  FinishReply finish_reply;
  finish.set_job("job");
  finish.set_session("not-a-session");
  finish.set_outcome(FinishRequest::FAILED);
  EXPECT_TRUE(worker->Finish(context_with(token).get(), finish, &finish_reply).ok());  // ignored

  expect_job_unharmed(c, rank);
  EXPECT_LT(c.state().status("job").step(), 999999);  // the made-up heartbeat moved nothing
}

TEST(HostileClients, ClientsThatNeverFinishTheirRequestsBlockNobody) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  TrainingRank rank(c, dir.file("ckpt"));

  // gRPC: connections that send half the HTTP/2 preface and then nothing.
  std::vector<int> stalled;
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_to(c.address());
    ASSERT_GE(fd, 0);
    (void)!::send(fd, "PRI * HTTP/2.0\r\n", 16, MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  // gRPC: calls that start (token and all) but never send their request.
  auto channel = make_channel(c.address(), "");
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::GenericClientAsyncReaderWriter>> calls;
  for (int i = 0; i < 20; ++i) {
    contexts.push_back(context_with(c.options.job_token, 60));
    calls.push_back(generic.PrepareCall(contexts.back().get(), "/rwkv.launch.Worker/Register", &cq));
    calls.back()->StartCall(reinterpret_cast<void*>(static_cast<intptr_t>(i + 1)));
  }
  // HTTP: more stalled connections than the server's 32 slots, one of them
  // trickling a byte a second (each recv alone would be in time).
  std::string http_body;
  ASSERT_EQ(testing::http_get(c.server->http_address(), "/healthz", &http_body), 200);
  std::vector<int> http_stalled;
  for (int i = 0; i < 40; ++i) {
    const int fd = connect_to(c.server->http_address());
    ASSERT_GE(fd, 0);
    (void)!::send(fd, "GET /metrics HTTP/1.1\r\nHost:", 28, MSG_NOSIGNAL);
    http_stalled.push_back(fd);
  }
  const double http_start = now_s();
  std::atomic<bool> trickling{true};
  std::atomic<double> trickle_cut{-1};
  std::thread trickler([&] {
    const int fd = http_stalled.front();
    while (trickling && now_s() - http_start < 30) {
      if (::send(fd, "x", 1, MSG_NOSIGNAL) <= 0) break;
      char b;
      timeval one{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &one, sizeof one);
      if (::recv(fd, &b, 1, 0) == 0) break;  // closed by the server
    }
    trickle_cut = now_s() - http_start;
  });

  // Meanwhile the job goes on and the controller answers at once.
  expect_job_unharmed(c, rank);
  // The HTTP slots come back when the 5 s for a request head run out,
  // trickle or not.
  EXPECT_TRUE(testing::wait_until([&] { return testing::http_get(c.server->http_address(), "/healthz", &http_body) == 200; },
                                  15));
  trickler.join();
  EXPECT_GT(trickle_cut.load(), 4.0);
  EXPECT_LT(trickle_cut.load(), 9.0);
  for (int fd : http_stalled) ::close(fd);
  expect_job_unharmed(c, rank);

  for (int fd : stalled) ::close(fd);
  for (auto& context : contexts) context->TryCancel();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace rwkv::launch
