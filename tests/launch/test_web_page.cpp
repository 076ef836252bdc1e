// The controller's web page in headless Chromium: after its scripts ran,
// the DOM holds one SVG circle per loss point (with its step and value) and
// one table row per rank with its health. Skipped, with the reason, only
// where no Chromium is installed (scripts/launch/apt-packages.txt installs it).
#include <gtest/gtest.h>

#include <regex>

#include "launch_test_util.h"

namespace rwkv::launch {
namespace {

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}) {
    const testing::CommandResult r = testing::run_command(std::string("command -v ") + name);
    if (r.exit_code == 0) return name;
  }
  return "";
}

TEST(WebPage, ShowsTheLossCurveAndRankHealthInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    GTEST_SKIP() << "Chromium is not installed: apt-get install chromium (scripts/setup.sh does it from "
                    "scripts/launch/apt-packages.txt)";
  testing::TempDir dir;
  testing::TestController c(dir.file("c.db"));
  ControllerClient rank0(c.client(0, 2, "web-job"));
  ControllerClient rank1(c.client(1, 2, "web-job"));
  RankInfo info;
  info.total_steps = 50;
  for (ControllerClient* client : {&rank0, &rank1}) client->register_rank(info);
  const std::vector<double> losses = {4.5, 4.0, 3.25, 3.0, 2.75};
  for (int64_t step = 1; step <= 5; ++step) {
    rank0.heartbeat(step, {{"loss", losses[static_cast<size_t>(step - 1)]}}, true);
    rank1.heartbeat(step, {}, true);
  }
  rank1.finish(Outcome::Failed, 5, "test failure");  // rank health must show it

  const std::string url = "http://" + c.server->http_address() + "/?token=" + c.options.job_token;
  // The flags of a closed network: no background traffic, nothing to sync.
  const std::string command =
      "timeout 90 " + chromium +
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
      " --disable-component-update --disable-sync --disable-dev-shm-usage --user-data-dir=" +
      dir.file("profile") + " --virtual-time-budget=10000 --dump-dom '" + url + "' 2>/dev/null";
  const testing::CommandResult r = testing::run_command(command);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& dom = r.output;
  ASSERT_NE(dom.find("data-ready=\"1\""), std::string::npos) << "the page never finished a refresh:\n" << dom;
  EXPECT_NE(dom.find("web-job"), std::string::npos);

  const std::regex circle(R"re(<circle[^>]*class="loss-point"[^>]*data-step="(\d+)"[^>]*data-value="([0-9.]+)")re");
  std::vector<std::pair<int, double>> points;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), circle); it != std::sregex_iterator(); ++it)
    points.emplace_back(std::stoi((*it)[1]), std::stod((*it)[2]));
  ASSERT_EQ(points.size(), losses.size()) << dom;
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(points[i].first, static_cast<int>(i + 1));
    EXPECT_DOUBLE_EQ(points[i].second, losses[i]);
  }
  EXPECT_NE(dom.find("class=\"loss-line\""), std::string::npos);
  EXPECT_NE(dom.find("data-rank=\"0\" data-state=\"alive\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-rank=\"1\" data-state=\"finished\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("test failure"), std::string::npos);
  EXPECT_NE(dom.find("2.7500"), std::string::npos);  // the summary's loss
}

}  // namespace
}  // namespace rwkv::launch
