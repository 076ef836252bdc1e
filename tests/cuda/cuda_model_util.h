// Model-level helpers of the CUDA whole-step tests.
#pragma once

#include <vector>

#include "cuda_test_util.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::test {

// The reference init plus uniform noise in [-0.05, 0.05]: the reference
// zeroes several matrices, and with the noise every path carries gradient.
inline void init_perturbed(ParameterStore& params, const Rwkv4Shape& shape) {
  init_rwkv4_reference(params, shape, 3, 1e-2);
  for (NamedTensor& e : params.entries()) {
    Tensor noise = random_tensor(e.value.shape(), DType::F32, 11, -0.05, 0.05);
    std::vector<float> v = e.value.to_vector<float>(), n = noise.to_vector<float>();
    for (size_t i = 0; i < v.size(); ++i) v[i] += n[i];
    e.value.copy_from(Tensor::from_vector<float>(v, e.value.shape()));
  }
}

}  // namespace rwkv::test
