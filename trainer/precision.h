// The numeric precision a model trains in (config key train.precision). Its
// own tiny header so that the config library can name it without linking the
// model; what each precision means buffer by buffer is trainer/precision_plan.h.
#pragma once

namespace rwkv {

enum class Precision {
  FP32,  // every parameter, activation and gradient in the model's dtype (f32; f64 in the tests)
  BF16,  // mixed precision on CUDA: bf16 GEMM operands and activations, fp32 master weights,
         // gradients, optimizer state, LayerNorm statistics, WKV maths and loss
};

inline const char* precision_name(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }

}  // namespace rwkv
