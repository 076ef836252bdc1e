// HTTP monitoring: the Prometheus exposition format line by line, the JSON
// endpoints the web page polls, token checks, and the minimal HTTP server's
// handling of bad requests.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "launch/http_server.h"
#include "launch/monitoring.h"
#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

// A controller with one job of two ranks and a few loss points.
struct Populated {
  testing::TempDir dir;
  testing::TestController c{dir.file("c.db")};
  Populated() {
    for (int r = 0; r < 2; ++r) {
      ControllerClient client(c.client(r, 2, "run-1"));
      RankInfo info;
      info.total_steps = 100;
      info.checkpoint_dir = dir.file("ckpt");
      info.checkpoint_interval = 50;
      client.register_rank(info);
      for (int64_t step = 1; step <= 3; ++step) {
        std::map<std::string, double> m;
        if (r == 0) m = {{"loss", 4.0 - 0.5 * static_cast<double>(step)}, {"tokens_per_s", 2000.0}};
        client.heartbeat(step, m, true);
      }
    }
  }
  std::string http() const { return c.server->http_address(); }
};

TEST(Prometheus, ExpositionFormatLineByLine) {
  Populated p;
  std::string body;
  ASSERT_EQ(testing::http_get(p.http(), "/metrics", &body, p.c.options.admin_token), 200);
  const std::regex help(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter))");
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf))");
  std::set<std::string> typed;
  std::istringstream in(body);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, type)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "TYPE twice for " << m[1];
    } else if (std::regex_match(line, help)) {
    } else if (std::regex_match(line, m, sample)) {
      EXPECT_TRUE(typed.count(m[1])) << "sample before its TYPE: " << line;
      ++samples;
    } else {
      ADD_FAILURE() << "not exposition format: '" << line << "'";
    }
  }
  EXPECT_GT(samples, 10);
  EXPECT_NE(body.find("rwkv_job_loss{job=\"run-1\"} 2.5\n"), std::string::npos) << body;
  EXPECT_NE(body.find("rwkv_job_step{job=\"run-1\"} 3\n"), std::string::npos) << body;
  EXPECT_NE(body.find("rwkv_job_ranks_alive{job=\"run-1\"} 2\n"), std::string::npos) << body;
  EXPECT_NE(body.find("rwkv_rank_up{job=\"run-1\",rank=\"1\"} 1\n"), std::string::npos) << body;
  EXPECT_NE(body.find("rwkv_metric{job=\"run-1\",name=\"tokens_per_s\"} 2000\n"), std::string::npos) << body;
  EXPECT_NE(body.find("rwkv_job_info{job=\"run-1\",state=\"running\",generation=\"1\"} 1\n"), std::string::npos);
}

TEST(HttpMonitoring, TokensAreRequiredForDataButNotForThePage) {
  Populated p;
  std::string body;
  const int64_t refused = p.c.state().refused_calls.load();
  EXPECT_EQ(testing::http_get(p.http(), "/metrics", &body), 401);
  EXPECT_NE(body.find("missing token"), std::string::npos);
  EXPECT_EQ(testing::http_get(p.http(), "/api/status", &body, "wrong"), 401);
  EXPECT_NE(body.find("wrong token"), std::string::npos);
  EXPECT_EQ(p.c.state().refused_calls.load(), refused + 2);
  EXPECT_EQ(testing::http_get(p.http(), "/api/status?token=" + p.c.options.job_token, &body), 200);
  EXPECT_EQ(testing::http_get(p.http(), "/", &body), 200);
  EXPECT_NE(body.find("<svg id=\"loss-chart\""), std::string::npos);
  EXPECT_EQ(testing::http_get(p.http(), "/healthz", &body), 200);
  EXPECT_EQ(testing::http_get(p.http(), "/nope", &body), 404);
}

TEST(HttpMonitoring, JsonEndpointsTheWebPagePolls) {
  Populated p;
  std::string body;
  ASSERT_EQ(testing::http_get(p.http(), "/api/status", &body, p.c.options.job_token), 200);
  const nlohmann::json s = nlohmann::json::parse(body);
  EXPECT_EQ(s["job"], "run-1");
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["step"], 3);
  EXPECT_EQ(s["total_steps"], 100);
  EXPECT_DOUBLE_EQ(s["loss"].get<double>(), 2.5);
  EXPECT_EQ(s["ranks_alive"], 2);
  ASSERT_EQ(s["ranks"].size(), 2u);
  EXPECT_EQ(s["ranks"][1]["state"], "alive");
  EXPECT_TRUE(s["last_committed"].is_null());
  ASSERT_EQ(testing::http_get(p.http(), "/api/metrics?name=loss&limit=2", &body, p.c.options.job_token), 200);
  const nlohmann::json m = nlohmann::json::parse(body);
  ASSERT_EQ(m["points"].size(), 2u);
  EXPECT_EQ(m["points"][0]["step"], 2);
  EXPECT_DOUBLE_EQ(m["points"][1]["value"].get<double>(), 2.5);
  EXPECT_EQ(testing::http_get(p.http(), "/api/metrics?limit=x", &body, p.c.options.job_token), 400);
  EXPECT_EQ(testing::http_get(p.http(), "/api/status?job=other", &body, p.c.options.job_token), 404);
}

TEST(HttpServer, ParsesQueriesAndRefusesOtherMethods) {
  HttpServer server("127.0.0.1:0", [](const HttpRequest& r) {
    std::string text = r.path;
    for (const auto& [k, v] : r.params) text += "|" + k + "=" + v;
    return HttpResponse{200, "text/plain", text};
  });
  ASSERT_GT(server.port(), 0);
  std::string body;
  EXPECT_EQ(testing::http_get(server.address(), "/a%20b?x=1&y=two+words&z=%2F", &body), 200);
  EXPECT_EQ(body, "/a b|x=1|y=two words|z=/");
  EXPECT_EQ(url_decode("100%25"), "100%");
}

TEST(HttpServer, AnAddressInUseIsAClearError) {
  HttpServer first("127.0.0.1:0", [](const HttpRequest&) { return HttpResponse{}; });
  try {
    HttpServer second(first.address(), [](const HttpRequest&) { return HttpResponse{}; });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(first.address()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
  EXPECT_THROW(HttpServer("no-port", [](const HttpRequest&) { return HttpResponse{}; }), Error);
}

}  // namespace
}  // namespace rwkv::launch
