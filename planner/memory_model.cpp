#include "planner/memory_model.h"

#include <algorithm>
#include <cmath>

namespace rwkv::planner {

double activation_set_bytes(const ModelSpec& m, const Rwkv4Partition& part, int64_t B, int64_t T, bool recompute,
                            double e) {
  const double N = static_cast<double>(B * T), C = static_cast<double>(m.n_embd);
  const double tp = static_cast<double>(part.tp_size), Cl = C / tp, Fl = static_cast<double>(m.dim_ffn) / tp;
  const double L = static_cast<double>(part.layer_end - part.layer_begin);
  const double i32 = 4;
  double bytes = 3 * N * i32;                  // tokens, targets, local token ids
  bytes += (2 * N * C + 2 * N) * e;            // emb_out, x_final; ln0 statistics
  const double block = N * (9 * C + 7 * Cl + 2 * Fl + 4) * e;
  bytes += recompute ? block + (L - 1) * N * C * e : L * block;
  if (part.has_head(m.shape())) {
    const double Vl = static_cast<double>(part.local_vocab());
    bytes += (N * C + 2 * N + N * Vl + 6 * N + 2 * tp * N) * e + (2 + tp) * N * i32;
  }
  bytes += (5 * N * C + 4 * N * Cl + N * Fl) * e;  // gradient scratch shared by every block
  if (part.tp_size > 1) bytes += 2 * N * C * e;   // tp_full, tp_blocks
  return bytes;
}

MemoryBreakdown stage_memory(const ModelSpec& m, const Layout& l, const CostTarget& t, int64_t stage) {
  MemoryBreakdown b;
  const Rwkv4Partition part = l.part(m, stage);
  const bool zero = l.zero && l.dp > 1;  // as rwkv-train: ZeRO-1 with one replica is plain AdamW
  const double P = static_cast<double>(local_parameters(m, part));
  b.stage = stage;
  b.parameters = local_parameters(m, part);
  b.params = P * t.param_bytes;
  b.grads = P * t.grad_bytes;
  b.master = zero ? 0.0 : P * t.master_bytes;  // with ZeRO-1 the masters live only in the shard
  // ZeRO-1 shard (parallel/data_parallel.h): S = ceil(P / (dp 64)) 64 elements.
  const double align = 64, S = std::ceil(P / (static_cast<double>(l.dp) * align)) * align;
  b.optimizer_replicated = P * t.adam_bytes;  // m, v (the master copy is its own line)
  // The shard of m, v and the f32 masters (in fp32 too: ShardedAdamW updates
  // its own copy of the owned elements, which the all-gather hands out).
  constexpr double kShardMasterBytes = 4;
  b.optimizer_zero1 = S * (t.adam_bytes + kShardMasterBytes);
  b.optimizer = zero ? b.optimizer_zero1 : b.optimizer_replicated;

  const int64_t B = l.micro_batch, T = m.ctx_len;
  b.in_flight = l.in_flight(stage);
  b.activations_full = static_cast<double>(b.in_flight) * activation_set_bytes(m, part, B, T, false, t.act_bytes);
  b.activations_recompute = static_cast<double>(b.in_flight) * activation_set_bytes(m, part, B, T, true, t.act_bytes);
  b.activations = l.recompute ? b.activations_recompute : b.activations_full;

  const double N = static_cast<double>(B * T), C = static_cast<double>(m.n_embd), bucket = static_cast<double>(t.bucket_bytes);
  if (l.dp > 1) {
    // One bucket of gradient bytes (the whole gradient when it is smaller).
    const double bucket_used = std::min(bucket, (zero ? S * static_cast<double>(l.dp) : P) * t.grad_bytes);
    b.comm_buffers += 2 * bucket_used;
    if (zero) b.comm_buffers += S * t.grad_bytes;  // the averaged gradient of this rank's shard
    // A wire narrower than the gradients: a ring of 4 buckets in its dtype.
    if (t.wire_grad_bytes() != t.grad_bytes) b.comm_buffers += 4 * bucket_used / t.grad_bytes * t.wire_grad_bytes();
  }
  if (l.tp > 1) b.comm_buffers += N * C * t.act_bytes;
  if (l.pp > 1) b.comm_buffers += 2 * N * C * t.act_bytes;
  b.overhead = t.runtime_overhead;
  b.steady = b.params + b.grads + b.master + b.optimizer + b.activations + b.comm_buffers + b.overhead;

  if (t.init_whole_model) {
    // Start-up (train_loop.cpp, init_rwkv4_reference): params and grads exist;
    // the head's orthogonal init holds the Gaussian matrix (made Q in place)
    // and Q in the tensor's layout, both in double, then frees the first
    // before rounding the second to f32 (8 + 4): 16 V C bytes (or ffn.key's
    // 16 F C when that is larger). A partitioned rank makes one global tensor
    // at a time whole in f32 and cuts its slice from it: at most 4 max(V, F)
    // C bytes more.
    const bool partitioned = l.tp > 1 || l.pp > 1 || part.padded_vocab != m.vocab_size;
    const double V = static_cast<double>(m.vocab_size), F = static_cast<double>(m.dim_ffn);
    b.init_peak = b.params + b.grads + b.overhead + (16.0 + (partitioned ? 4.0 : 0.0)) * std::max(V, F) * C;
  }
  b.total = std::max(b.steady, b.init_peak);
  return b;
}

MemoryBreakdown rank_memory(const ModelSpec& m, const Layout& l, const CostTarget& t) {
  MemoryBreakdown worst = stage_memory(m, l, t, 0);
  for (int64_t s = 1; s < l.pp; ++s) {
    MemoryBreakdown b = stage_memory(m, l, t, s);
    if (b.total > worst.total) worst = b;
  }
  return worst;
}

}  // namespace rwkv::planner
