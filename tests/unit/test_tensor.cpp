#include "core/tensor.h"

#include "core/log.h"
#include "test_util.h"

namespace rwkv {
namespace {

TEST(Tensor, ShapeSizeAndViews) {
  Tensor t = Tensor::zeros({2, 3, 4}, DType::F32);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.str(), "f32[2, 3, 4] cpu");
  for (float x : t.to_vector<float>()) EXPECT_EQ(x, 0.0f);
  Tensor v = t.view({6, 4});
  v.data<float>()[5] = 7.0f;
  EXPECT_EQ(t.data<float>()[5], 7.0f);  // views share memory
  Tensor rows = t.slice_rows(1, 1);
  EXPECT_EQ(rows.shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(rows.data<float>(), t.data<float>() + 12);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty({3}, DType::F32).raw_data()) % 64, 0u);
}

TEST(Tensor, CopiesAndConversions) {
  Tensor a = Tensor::from_vector<double>({1.0, -2.5, 3.25}, {3});
  Tensor b = a.clone();
  b.data<double>()[0] = 9.0;
  EXPECT_EQ(a.data<double>()[0], 1.0);
  Tensor f = a.to_dtype(DType::F32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.0f, -2.5f, 3.25f}));
  Tensor h = a.to_dtype(DType::BF16).to_dtype(DType::F64);
  EXPECT_EQ(h.to_vector<double>(), a.to_vector<double>());  // exactly representable in bf16
}

TEST(Tensor, MisuseGivesClearErrors) {
  Tensor t = Tensor::zeros({2, 3}, DType::F32);
  test::expect_error([&] { t.data<double>(); }, {"f32[2, 3]", "accessed as f64"});
  test::expect_error([&] { t.view({4, 2}); }, {"cannot view", "[4, 2]"});
  test::expect_error([&] { t.slice_rows(1, 2); }, {"slice_rows", "out of range"});
  test::expect_error([&] { t.dim(2); }, {"no dimension 2"});
  test::expect_error([&] { Tensor::empty({-1}, DType::F32); }, {"negative dimension"});
  test::expect_error([&] { Tensor::from_vector<float>({1.0f}, {2}); }, {"1 values", "[2]"});
  Tensor other = Tensor::zeros({3, 2}, DType::F32);
  test::expect_error([&] { t.copy_from(other); }, {"copy_from", "does not match"});
  test::expect_error([&] { Tensor().raw_data(); }, {"undefined"});
  test::expect_error([] { parse_log_level("loud"); }, {"loud", "debug, info, warn, error"});
}

TEST(Tensor, CudaRequestWithoutGpuIsAnError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  test::expect_error([] { Tensor::empty({4}, DType::F32, Device::cuda()); }, {"CUDA"});
}

}  // namespace
}  // namespace rwkv
