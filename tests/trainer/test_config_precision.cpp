// train.precision: fp32 (the default) or bf16, which needs device: cuda;
// parallel.grad_reduce_dtype: fp32 (the default) or bf16 on either device.
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace rwkv::trainer {
namespace {

using test::config_error;
using test::kMinimalYaml;
using test::minimal_with;

TEST(ConfigPrecision, DefaultsToFp32AndReadsBf16OnCuda) {
  EXPECT_EQ(load_config_text(kMinimalYaml, "test.yaml").train.precision, Precision::FP32);
  const TrainConfig c = load_config_text("device: cuda\n" + minimal_with("train", "precision: bf16"), "test.yaml");
  EXPECT_EQ(c.train.precision, Precision::BF16);
  EXPECT_STREQ(to_string(c.train.precision), "bf16");
  const std::string dump = config_to_yaml(c);
  EXPECT_NE(dump.find("precision: bf16\n"), std::string::npos) << dump;
  EXPECT_TRUE(load_config_text(dump, "dump.yaml") == c);
  // Precision changes how a run trains, so it changes the digest.
  EXPECT_NE(config_digest(c), config_digest(load_config_text("device: cuda\n" + std::string(kMinimalYaml), "t")));
}

TEST(ConfigPrecision, Bf16OnTheCpuIsOneClearError) {
  const std::string message = config_error(minimal_with("train", "precision: bf16"), {},
                                           {"test.yaml:", "train.precision: is bf16 but device is cpu",
                                            "expected fp32 on the CPU", "---> HINT: set device: cuda"});
  EXPECT_EQ(message.find("\n", message.find("HINT")), std::string::npos) << "more than one hint line:\n" << message;
  config_error(kMinimalYaml, {"train.precision=bf16"}, {"(--set train.precision=bf16)", "is bf16 but device is cpu"});
}

TEST(ConfigPrecision, UnknownValuesNameTheChoices) {
  config_error(minimal_with("train", "precision: fp16"), {},
               {"test.yaml:", "train.precision: expected one of fp32, bf16, got 'fp16'", "did you mean 'bf16'?"});
  config_error(minimal_with("train", "precision: float32"), {}, {"did you mean 'fp32'?"});
  config_error(minimal_with("train", "precision: [bf16]"), {}, {"expected one of fp32, bf16, got a list"});
}

TEST(ConfigPrecision, GradReduceDtypeDefaultsToFp32AndTakesBf16OnEitherDevice) {
  EXPECT_EQ(load_config_text(kMinimalYaml, "test.yaml").parallel.grad_reduce_dtype, Precision::FP32);
  // The CPU's MPI communicator sums bf16 too, so no device is required.
  const TrainConfig c = load_config_text(minimal_with("parallel", "grad_reduce_dtype: bf16"), "test.yaml");
  EXPECT_EQ(c.parallel.grad_reduce_dtype, Precision::BF16);
  const std::string dump = config_to_yaml(c);
  EXPECT_NE(dump.find("grad_reduce_dtype: bf16\n"), std::string::npos) << dump;
  EXPECT_TRUE(load_config_text(dump, "dump.yaml") == c);
  // It changes the gradients AdamW sees, so it changes the digest.
  EXPECT_NE(config_digest(c), config_digest(load_config_text(kMinimalYaml, "t")));
  config_error(minimal_with("parallel", "grad_reduce_dtype: half"), {},
               {"test.yaml:", "parallel.grad_reduce_dtype: expected one of fp32, bf16, got 'half'", "did you mean 'bf16'?"});
  config_error(kMinimalYaml, {"parallel.grad_reduce_dtype=int8"},
               {"parallel.grad_reduce_dtype: expected one of fp32, bf16, got 'int8'"});
}

}  // namespace
}  // namespace rwkv::trainer
