// The precision plan: which dtype every parameter role and every activation
// buffer of Rwkv4Model has, and how many bytes that costs. A pure function of
// (precision, master dtype, shapes): plain C++, tested on the CPU
// (tests/model/test_precision_plan.cpp); the model allocates what it says
// (Rwkv4Model::slot asks kind_dtype, activation_bytes sums the buffer list).
//
// bf16 (docs/mixed_precision.md has the table and the reasons):
//   parameters   f32 master (ParameterStore: checkpoints, ZeRO, every
//                collective), f32 gradients (accumulated across micro-batches:
//                Megatron's main_grad), f32 AdamW m and v. The GEMM matrices
//                (emb, head, att K/V/R/O, ffn K/R/V) get a bf16 compute copy
//                that forward/backward read, rewritten by AdamW (param_copy)
//                after each step. LayerNorm weights, time_decay, time_first and
//                time_mix stay f32: the kernels read them in f32 and they are
//                [C] vectors, so a copy would save nothing.
//   activations  bf16: the residual stream, LayerNorm and token-shift outputs,
//                every GEMM input and output, WKV input/output (fp32 maths
//                inside), logits, and the activation gradients (the cuBLAS
//                operands must share a dtype, so dy is bf16 like W and x).
//   statistics   f32: LayerNorm mean/rstd, per-token losses, softmax row
//                statistics; argmaxes and token ids i32.
// fp32: everything in the master dtype, no copies: the model as it was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "trainer/precision.h"

namespace rwkv {

// What a parameter is to the model (from its reference name).
enum class ParamRole {
  Embedding,       // emb.weight [V, C]: an embedding lookup, which reads it like a GEMM operand
  Head,            // head.weight [V, C]
  AttKey, AttValue, AttReceptance, AttOutput,  // [C, C]
  FfnKey,          // [F, C]
  FfnReceptance,   // [C, C]
  FfnValue,        // [C, F]
  LayerNormWeight, LayerNormBias,  // ln0, ln1, ln2, ln_out [C]
  TimeDecay, TimeFirst,            // att [C]
  TimeMix,                         // att/ffn time_mix_* [1, 1, C]
};

const char* role_name(ParamRole role);
// The role of a reference name ("blocks.3.att.key.weight" -> AttKey); throws
// naming the tensor when it is none of RWKV-4's.
ParamRole param_role(const std::string& name);
// True for the matrices a GEMM (or the embedding lookup) reads.
bool is_gemm_matrix(ParamRole role);

// The dtypes one parameter lives in.
struct ParamDTypes {
  DType master;   // ParameterStore value: optimizer, checkpoints, communication
  DType compute;  // what forward/backward read; == master means no copy
  DType grad;     // the gradient store (accumulated in this dtype)
  DType adam_m, adam_v;
  bool has_copy() const { return compute != master; }
  // master + copy (if any) + grad + m + v: 18 for a bf16 matrix, 16 for every
  // f32 parameter, 32 in the f64 test models.
  int64_t bytes_per_element() const;
};

// The buffer classes of one micro-batch slot (Rwkv4Model::Activations).
enum class ActivationKind {
  Activation,      // forward values read by later ops or by backward: [B, T, C|C_l|F_l]
  ActivationGrad,  // gradient scratch: d_res, d_c*, d_l*, d_f
  Logits,          // [N, V_l], overwritten by its gradient in backward
  Collective,      // tensor-parallel staging: tp_full, tp_blocks (sums of activations)
  Statistic,       // LayerNorm mean/rstd, losses, softmax row max/sum [N] or [tp, N]
  Index,           // i32: argmaxes and the token rows
  Input,           // i32 token rows of the batch (tokens, targets, tokens_local)
};

// One buffer (or a group of identical ones) of a slot.
struct ActivationBuffer {
  std::string name;   // the member of Rwkv4Model::Activations / BlockActivations
  ActivationKind kind;
  DType dtype;
  int64_t elements;   // per buffer
  int64_t count;      // how many such buffers the slot holds (per kept block, etc.)
  int64_t bytes() const { return elements * count * static_cast<int64_t>(dtype_size(dtype)); }
};

// The sizes a slot depends on.
struct SlotDims {
  int64_t B = 0, T = 0;
  int64_t C = 0, C_l = 0, F_l = 0, V_l = 0;  // C, this rank's C/tp, F/tp, vocabulary rows
  int64_t tp = 1;
  int64_t blocks = 0;     // this stage's blocks
  bool recompute = false; // blocks share one activation set except their inputs
  bool has_head = true;   // the last stage: ln_out, head, loss buffers
};

class PrecisionPlan {
 public:
  // master: the ParameterStore dtype (f32; f64 for the double-precision
  // tests, fp32 precision only). Throws for bf16 with an f64 master.
  explicit PrecisionPlan(Precision precision, DType master = DType::F32);

  Precision precision() const { return precision_; }
  DType master() const { return master_; }
  ParamDTypes param(ParamRole role) const;
  ParamDTypes param(const std::string& name) const { return param(param_role(name)); }
  DType kind_dtype(ActivationKind kind) const;
  // The WKV (aa, bb, pp) state of chunked and recurrent runs: always the
  // master dtype (f32), as the kernel keeps its scan state in fp32 whatever
  // k and v are stored in (pp is a running max exponent; bf16 would lose it).
  DType wkv_state_dtype() const { return master_; }

  // Every buffer Rwkv4Model::slot allocates, in its order.
  std::vector<ActivationBuffer> activation_buffers(const SlotDims& dims) const;
  // Their bytes; with_inputs false leaves out the i32 token rows.
  int64_t activation_set_bytes(const SlotDims& dims, bool with_inputs = true) const;

 private:
  Precision precision_;
  DType master_;
};

}  // namespace rwkv
