// The controller over gRPC, in process: token checks on every call (refused,
// logged, counted), the client the trainer uses (registration, rate-limited
// heartbeats carrying metrics, checkpoint acks, errors naming the address),
// reconnecting to a restarted controller, and TLS.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "launch/controller.grpc.pb.h"
#include "launch/controller_client.h"
#include "launch/controller_service.h"
#include "launch/grpc_util.h"
#include "launch/tokens.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<grpc::ClientContext> context_with(const std::string& token) {
  auto c = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) c->AddMetadata(kTokenMetadataKey, token);
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return c;
}

RankInfo rank_info(const std::string& ckpt, int64_t interval = 10, int64_t total = 100) {
  RankInfo info;
  info.config_digest = "d";
  info.total_steps = total;
  info.checkpoint_dir = ckpt;
  info.checkpoint_interval = interval;
  return info;
}

TEST(TokenCheck, RolesAndCodes) {
  grpc::StatusCode code;
  EXPECT_EQ(check_token("", Role::Reader, "job", "admin", &code), "missing token (metadata x-rwkv-token)");
  EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(check_token("nope", Role::Reader, "job", "admin", &code), "wrong token");
  EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(check_token("job", Role::Worker, "job", "admin", &code), "");
  EXPECT_EQ(check_token("job", Role::Reader, "job", "admin", &code), "");
  EXPECT_NE(check_token("job", Role::Admin, "job", "admin", &code), "");
  EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(check_token("admin", Role::Admin, "job", "admin", &code), "");
  EXPECT_EQ(check_token("admin", Role::Reader, "job", "admin", &code), "");
  EXPECT_NE(check_token("admin", Role::Worker, "job", "admin", &code), "");
  EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED);
}

TEST(ControllerGrpc, WrongOrMissingTokensAreRefusedLoggedAndCounted) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  auto channel = make_channel(c.address(), "");
  auto worker = Worker::NewStub(channel);
  auto admin = Admin::NewStub(channel);
  RegisterRequest reg;
  reg.set_job("job");
  reg.set_world_size(1);
  RegisterReply reg_reply;
  StatusReply status;
  StopReply stop;

  ::testing::internal::CaptureStderr();
  EXPECT_EQ(worker->Register(context_with("").get(), reg, &reg_reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(worker->Register(context_with("wrong").get(), reg, &reg_reply).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(worker->Register(context_with(c.options.admin_token).get(), reg, &reg_reply).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(admin->Status(context_with("wrong").get(), StatusRequest(), &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(admin->Stop(context_with(c.options.job_token).get(), StopRequest(), &stop).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(c.state().refused_calls.load(), 5);
  EXPECT_NE(log.find("refused Register from ipv4:127.0.0.1"), std::string::npos) << log;
  EXPECT_NE(log.find("wrong token"), std::string::npos) << log;
  EXPECT_NE(log.find("missing token"), std::string::npos) << log;
  EXPECT_NE(log.find("refused Stop"), std::string::npos) << log;
  // Nothing refused changed anything.
  EXPECT_TRUE(c.state().job_ids().empty());
  // The right tokens pass.
  EXPECT_TRUE(worker->Register(context_with(c.options.job_token).get(), reg, &reg_reply).ok());
  EXPECT_TRUE(admin->Status(context_with(c.options.job_token).get(), StatusRequest(), &status).ok());
  EXPECT_TRUE(admin->Status(context_with(c.options.admin_token).get(), StatusRequest(), &status).ok());
  EXPECT_EQ(status.job(), "job");
}

TEST(ControllerClient, RegistersHeartbeatsAndAcksACheckpointThatCommits) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  const std::string ckpt = dir.file("ckpt");
  std::vector<std::unique_ptr<ControllerClient>> clients;
  std::vector<ControllerCommand> cmds;
  for (int r = 0; r < 2; ++r) {
    clients.push_back(std::make_unique<ControllerClient>(c.client(r, 2)));
    cmds.push_back(clients.back()->register_rank(rank_info(ckpt)));
    EXPECT_EQ(cmds.back().kind, ControllerCommand::Kind::Checkpoint);
    EXPECT_EQ(cmds.back().step, 10);
  }
  for (int64_t step = 1; step <= 10; ++step) {
    for (int r = 0; r < 2; ++r) {
      std::map<std::string, double> metrics;
      if (r == 0) metrics = {{"loss", 10.0 - static_cast<double>(step)}};
      const ControllerCommand cmd = clients[static_cast<size_t>(r)]->heartbeat(step, metrics, true);
      EXPECT_EQ(cmd.checkpoint_at(step), step == 10) << "step " << step;
      if (cmd.checkpoint_at(step)) {
        const std::string state =
            clients[static_cast<size_t>(r)]->ack_checkpoint(step, testing::write_fake_shard(ckpt, step, r, 2));
        EXPECT_EQ(state, r == 0 ? "requested" : "committing");
      }
    }
  }
  c.state().wait_for_commits();
  EXPECT_EQ(testing::committed_steps(ckpt), std::vector<int64_t>{10});
  const StatusReply st = c.state().status("job");
  EXPECT_EQ(st.step(), 10);
  EXPECT_DOUBLE_EQ(st.loss(), 0.0);
  EXPECT_EQ(st.last_committed().step(), 10);
  MetricsRequest q;
  q.set_job("job");
  EXPECT_EQ(c.state().metrics(q).points_size(), 10);
  for (auto& client : clients) client->finish(Outcome::Completed, 10);
  EXPECT_EQ(c.state().status("job").state(), "completed");
}

TEST(ControllerClient, HeartbeatsAreRateLimitedAndMetricsBuffered) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  ClientOptions o = c.client(0, 1);
  o.heartbeat_s = 3600;  // only the first call and forced calls go out
  ControllerClient client(o);
  client.register_rank(rank_info(dir.file("ckpt"), 0, 0));
  client.heartbeat(1, {{"loss", 3.0}});  // registering counts as contact: not sent yet
  for (int64_t step = 2; step <= 5; ++step) client.heartbeat(step, {{"loss", 3.0 - 0.1 * static_cast<double>(step)}});
  MetricsRequest q;
  q.set_job("job");
  EXPECT_EQ(c.state().metrics(q).points_size(), 0);
  EXPECT_EQ(c.state().status("job").step(), 0);
  client.heartbeat(6, {{"loss", 2.0}}, /*force=*/true);
  EXPECT_EQ(c.state().metrics(q).points_size(), 6);  // nothing lost: buffered points went with it
  EXPECT_EQ(c.state().status("job").step(), 6);
}

TEST(ControllerClient, AnUnreachableControllerIsAClearErrorNamingTheAddress) {
  // A port that was free a moment ago: nothing listens there.
  std::string address;
  {
    testing::TempDir dir;
    testing::TestController c(dir.file("c.db"));
    address = c.address();
  }
  ClientOptions o;
  o.address = address;
  o.job = "job";
  o.token = "t";
  o.unreachable_timeout_s = 0.5;
  ControllerClient client(o);
  try {
    client.register_rank(RankInfo{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("controller at " + address), std::string::npos) << m;
    EXPECT_NE(m.find("unreachable"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT: is rwkv-controller running"), std::string::npos) << m;
  }
}

TEST(ControllerClient, AWrongTokenIsAClearError) {
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  ClientOptions o = c.client(0, 1);
  o.token = "not-the-token";
  ControllerClient client(o);
  try {
    client.register_rank(rank_info(dir.file("ckpt")));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("refused (token)"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
}

TEST(ControllerClient, ReconnectsToARestartedControllerAndTrainingGoesOn) {
  testing::TempDir dir;
  ServerOptions options;
  auto c = std::make_unique<testing::TestController>(dir.file("c.db"), options);
  const std::string address = c->address();
  options = c->options;
  ControllerClient client(c->client(0, 1));
  client.register_rank(rank_info(dir.file("ckpt"), 0, 0));
  client.heartbeat(1, {{"loss", 5.0}}, true);

  c.reset();  // the controller goes away
  // Training goes on; heartbeats fail quietly and metrics wait.
  for (int64_t step = 2; step <= 4; ++step)
    EXPECT_EQ(client.heartbeat(step, {{"loss", 5.0 - static_cast<double>(step)}}, true).kind,
              ControllerCommand::Kind::None);

  options.grpc_address = address;  // same port, same database
  c = std::make_unique<testing::TestController>(dir.file("c.db"), options);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        client.heartbeat(5, {}, true);
        return c->state().status("job").step() == 5;
      },
      10.0));
  const StatusReply st = c->state().status("job");
  EXPECT_EQ(st.generation(), 1);  // the same run, not a restart
  EXPECT_EQ(st.ranks_alive(), 1);
  MetricsRequest q;
  q.set_job("job");
  EXPECT_EQ(c->state().metrics(q).points_size(), 4);  // steps 1-4: none lost
}

TEST(ControllerClient, ReRegistersWhenTheControllerLostTheJob) {
  testing::TempDir dir;
  ServerOptions options;
  auto c = std::make_unique<testing::TestController>(dir.file("a.db"), options);
  const std::string address = c->address();
  options = c->options;
  ControllerClient client(c->client(0, 1));
  client.register_rank(rank_info(dir.file("ckpt"), 0, 0));
  c.reset();
  options.grpc_address = address;
  c = std::make_unique<testing::TestController>(dir.file("b.db"), options);  // a fresh database
  ASSERT_TRUE(testing::wait_until(
      [&] {
        client.heartbeat(7, {}, true);
        return !c->state().job_ids().empty() && c->state().status("job").step() == 7;
      },
      10.0));
  EXPECT_EQ(c->state().status("job").ranks_alive(), 1);
}

bool have_openssl() { return testing::run_command("openssl version").exit_code == 0; }

TEST(ControllerGrpc, TlsWhenConfigured) {
  if (!have_openssl()) GTEST_SKIP() << "openssl is not installed: cannot make a test certificate";
  testing::TempDir dir;
  const testing::CommandResult made = testing::run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext "
      "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      dir.file("key.pem") + " -out " + dir.file("cert.pem"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ServerOptions options;
  options.tls_cert_file = dir.file("cert.pem");
  options.tls_key_file = dir.file("key.pem");
  testing::TestController c(dir.file("c.db"), options);
  ClientOptions o = c.client(0, 1);
  o.tls_ca_file = dir.file("cert.pem");
  ControllerClient client(o);
  EXPECT_NO_THROW(client.register_rank(rank_info(dir.file("ckpt"))));
  // A plaintext client cannot talk to a TLS controller.
  ClientOptions plain = c.client(0, 1);
  plain.unreachable_timeout_s = 0.3;
  ControllerClient plain_client(plain);
  EXPECT_THROW(plain_client.register_rank(rank_info(dir.file("ckpt"))), Error);
}

}  // namespace
}  // namespace rwkv::launch
