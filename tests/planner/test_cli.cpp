// rwkv-plan as a user runs it: a table, JSON, and for impossible requests one
// clear error line (plus its hint) and a non-zero exit instead of an empty table.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/unit/test_util.h"

namespace {

using Result = rwkv::test::CommandResult;

Result run(const std::string& args) { return rwkv::test::run_command(std::string(RWKV_PLAN) + " " + args); }

// The message is one line "rwkv-plan: error: ..." followed by at most its hint.
void expect_one_line_error(const Result& r, const std::string& text) {
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("rwkv-plan: error: ", 0), 0u) << r.output;
  const size_t first_newline = r.output.find('\n');
  EXPECT_NE(r.output.substr(0, first_newline).find(text), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("   #   dp"), std::string::npos) << "no table after an error:\n" << r.output;
}

TEST(PlannerCli, TableAndJson) {
  const Result table = run("--model 14B --cluster a100-80g --nodes 8 --top 5");
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("14,148,597,760 parameters"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("best: layout dp="), std::string::npos) << table.output;
  const Result js = run("--model 14B --cluster h100-80g --nodes 8 --json --top 3");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  const nlohmann::json j = nlohmann::json::parse(js.output);
  EXPECT_EQ(j["model"]["parameters"], 14148597760);
  EXPECT_EQ(j["world"], 64);
  ASSERT_EQ(j["plans"].size(), 3u);
  EXPECT_TRUE(j["plans"][0]["fits"].get<bool>());
  EXPECT_GT(j["plans"][0]["tokens_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["plans"][0]["memory_bytes"]["optimizer_replicated"].get<double>(), 0.0);
}

// --grad-reduce bf16 (rwkv-train's parallel.grad_reduce_dtype: bf16) halves
// the dp gradient traffic of the same layout and says so above the table.
TEST(PlannerCli, Bf16GradientWire) {
  const std::string layout = "--model 14B --cluster a100-80g --nodes 8 --layout 32x2x1 --zero on --json --top 1";
  const Result f32 = run(layout), wire = run(layout + " --grad-reduce bf16");
  ASSERT_EQ(f32.exit_code, 0) << f32.output;
  ASSERT_EQ(wire.exit_code, 0) << wire.output;
  const nlohmann::json a = nlohmann::json::parse(f32.output), b = nlohmann::json::parse(wire.output);
  EXPECT_EQ(a["target"]["reduce_bytes"], 4.0);
  EXPECT_EQ(b["target"]["reduce_bytes"], 2.0);
  EXPECT_GT(b["plans"][0]["tokens_per_s"].get<double>(), a["plans"][0]["tokens_per_s"].get<double>());
  const Result table = run("--model 14B --cluster a100-80g --nodes 8 --top 1 --grad-reduce bf16");
  EXPECT_NE(table.output.find("(dp gradients on a 2-byte wire)"), std::string::npos) << table.output;
  const Result bad = run("--model 14B --cluster a100-80g --grad-reduce int8");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--grad-reduce expects bf16 or fp32, got 'int8'"), std::string::npos) << bad.output;
}

TEST(PlannerCli, CustomClusterAndFixedLayout) {
  const Result r = run("--model " RWKV_SOURCE_DIR "/configs/rwkv4-14b.yaml --nodes 8 --gpus-per-node 8 --gpu-memory 80GiB "
                       "--tflops 312 --intra-bw 600GB/s --inter-bw 200Gb/s --layout 2x4x8 --json --top 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  for (const auto& p : j["plans"]) {
    EXPECT_EQ(p["layout"]["dp"], 2);
    EXPECT_EQ(p["layout"]["tp"], 4);
    EXPECT_EQ(p["layout"]["pp"], 8);
  }
}

TEST(PlannerCli, InfeasibleRequestsFailWithOneLine) {
  expect_one_line_error(run("--model 14B --cluster a100-80g --gpus-per-node 1"), "14B does not fit on 1 devices");
  expect_one_line_error(run("--model 14B --cluster a100-80g --gpus-per-node 0"), "--gpus-per-node must be at least 1, got 0");
  expect_one_line_error(run("--model 14B --cluster a100-80g --gpu-memory -80GiB"), "--gpu-memory must be positive");
  expect_one_line_error(run("--model 14B --cluster a100-80g --nodes 0"), "--nodes must be at least 1, got 0");
  expect_one_line_error(run("--model 14B --cluster a100-80g --tflops 0"), "--tflops must be positive");
  expect_one_line_error(run("--model 14B --gpus-per-node 8 --gpu-memory 80GiB --tflops 312"), "--intra-bw is required");
  expect_one_line_error(run("--model 13B --cluster a100-80g"), "'13B' is neither an RWKV-4-Pile name nor a config file");
  expect_one_line_error(run("--model 14B --cluster a100-80g --tp 3"), "no layout of 8 ranks can run 14B");
  expect_one_line_error(run("--model 14B --cluster a100-80g --layout 2x2x1"), "= 4 ranks, but the cluster has 8");
  expect_one_line_error(run("--model 14B --cluster tpu"), "unknown preset 'tpu'");
  const Result usage = run("--cluster a100-80g");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  EXPECT_NE(usage.output.find("--model is required"), std::string::npos) << usage.output;
}

}  // namespace
