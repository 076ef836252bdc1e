#include "planner/time_model.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rwkv::planner {

namespace {

// A communication group: n ranks, bus bandwidth and per-step latency.
struct Link {
  double n = 1, bw = 1, latency = 0;
  double all_reduce(double bytes) const { return n <= 1 ? 0 : 2 * (n - 1) / n * bytes / bw + 2 * (n - 1) * latency; }
  double reduce_scatter(double bytes) const { return n <= 1 ? 0 : (n - 1) / n * bytes / bw + (n - 1) * latency; }
  double all_gather(double bytes) const { return reduce_scatter(bytes); }
  double transfer(double bytes) const { return bytes / bw + latency; }
};

// Ranks `stride` apart, `size` of them: one node holds them all when
// stride x size <= GPUs per node (ranks fill nodes in order, tp fastest).
// Across nodes, g = min(size, GPUs per node / stride) members share each
// node, and NCCL drives g rings at once, one through each member's own NIC:
// bus bandwidth g x inter_bw (at most the intra-node bandwidth). A group with
// one member per node (stride >= GPUs per node) gets one NIC's bandwidth.
Link group_link(const Cluster& c, const CostTarget& t, int64_t size, int64_t stride) {
  const bool across = c.nodes > 1 && stride * size > c.gpus_per_node;
  const double per_node = std::clamp<double>(static_cast<double>(c.gpus_per_node / std::max<int64_t>(1, stride)), 1.0,
                                             static_cast<double>(size));
  Link link;
  link.n = static_cast<double>(size);
  link.bw = across ? std::min(per_node * c.inter_bw * t.inter_efficiency, c.intra_bw * t.intra_efficiency)
                   : c.intra_bw * t.intra_efficiency;
  link.latency = across ? t.latency_inter : t.latency_intra;
  return link;
}

struct StageCost {
  double compute = 0, tp = 0, pp = 0;
  double total() const { return compute + tp + pp; }
};

}  // namespace

StepTime step_time(const ModelSpec& m, const Layout& l, const Cluster& c, const CostTarget& t) {
  const int64_t world = l.world();
  const double flops = c.rank_flops(world) * t.gemm_efficiency;
  const double mem_bw = c.rank_mem_bw(world) * t.mem_efficiency;
  const Link tp_link = group_link(c, t, l.tp, 1);
  const Link dp_link = group_link(c, t, l.dp, l.tp);
  const Link pp_link = group_link(c, t, l.pp, l.tp * l.dp);
  const bool zero = l.zero && l.dp > 1;
  const double e = t.act_bytes, N = static_cast<double>(l.micro_batch * m.ctx_len);
  const double C = static_cast<double>(m.n_embd), F = static_cast<double>(m.dim_ffn), tp = static_cast<double>(l.tp);
  const double Cl = C / tp, Fl = F / tp, NC = N * C * e;
  const double rc = l.recompute ? 1.0 : 0.0;

  std::vector<StageCost> stages;
  double dp_worst = 0, optim_worst = 0;
  for (int64_t s = 0; s < l.pp; ++s) {
    const Rwkv4Partition part = l.part(m, s);
    const double Ls = static_cast<double>(part.layer_end - part.layer_begin);
    const double Vl = static_cast<double>(part.local_vocab());
    const bool last = part.has_head(m.shape()), first = part.has_embedding();
    StageCost sc;
    // --- compute
    double gemm = 2 * N * Ls * (5 * C * Cl + 2 * C * Fl) * (3 + rc);
    if (last) gemm += 6 * N * Vl * C;
    double elementwise = e * N * Ls * (9 * C + 7 * Cl + 2 * Fl) * (6 + 2 * rc);
    if (last) elementwise += 4 * e * N * Vl;
    const double launches = Ls * (50 + 20 * rc) * t.kernel_overhead;
    sc.compute = gemm / flops + elementwise / mem_bw + launches;
    // --- tensor parallelism
    if (l.tp > 1) {
      const double fwd = tp_link.all_reduce(NC) + tp_link.reduce_scatter(NC) + tp_link.all_gather(NC);
      const double bwd = tp_link.all_gather(NC) + 2 * tp_link.all_reduce(NC);
      sc.tp = Ls * ((1 + rc) * fwd + bwd);
      if (first) sc.tp += tp_link.all_reduce(NC);  // embedding rows
      if (last) sc.tp += tp_link.all_reduce(NC) + 3 * tp_link.all_gather(N * e) + tp_link.all_reduce(N * e);  // head
    }
    // --- pipeline transfers this stage takes part in
    if (l.pp > 1) sc.pp = ((first ? 0 : 2) + (last ? 0 : 2)) * pp_link.transfer(NC);
    stages.push_back(sc);
    // --- after the pipeline: dp reduction and the optimizer
    const double P = static_cast<double>(local_parameters(m, part));
    // dp: the gradient reduction, which can hide behind backward; after: the
    // ZeRO-1 parameter all-gather after AdamW, which only the next forward can hide.
    double dp = 0, after = 0;
    if (l.dp > 1) {
      if (zero) {
        dp = dp_link.reduce_scatter(P * t.wire_grad_bytes());
        const double g = t.gather_bytes > 0 ? t.gather_bytes : t.param_bytes;
        // One bucket (of f32 elements) per run of vectors: two a block, and
        // ln_out; those buckets travel in f32, before the rest.
        const double runs = 2 * Ls + (last ? 1 : 0);
        const double mixed = t.mixed_gather_bytes > g ? std::min(P, runs * static_cast<double>(t.bucket_bytes) / 4) : 0;
        if (t.gather_overlap) {
          // The others land while the next forward runs, each block waiting
          // for its own: stage s starts its first forward after s stages'
          // forwards, and the last block needs its buckets about one
          // micro-batch forward (a third of the stage's time) later still.
          const double forward = sc.total() / (3 + rc);
          const double in_flight = dp_link.all_gather((P - mixed) * g);
          after = dp_link.all_gather(mixed * t.mixed_gather_bytes) +
                  std::max(0.0, in_flight - static_cast<double>(s + 1) * forward);
        } else {
          after = dp_link.all_gather(mixed * t.mixed_gather_bytes + (P - mixed) * g);
        }
      } else {
        // bucket_bytes counts the gradient buffer's elements, whatever the wire.
        const double buckets = std::ceil(P * t.grad_bytes / static_cast<double>(t.bucket_bytes));
        dp = 2 * (dp_link.n - 1) / dp_link.n * P * t.wire_grad_bytes() / dp_link.bw +
             buckets * 2 * (dp_link.n - 1) * dp_link.latency;
      }
    }
    const double P_opt = zero ? P / static_cast<double>(l.dp) : P;
    const double optim = (P * t.grad_bytes + P_opt * (t.grad_bytes + 28.0)) / mem_bw;
    dp_worst = std::max(dp_worst, (1.0 - t.dp_overlap) * dp + after);
    optim_worst = std::max(optim_worst, optim);
  }

  StepTime out;
  const double M = static_cast<double>(l.grad_accum);
  double sum = 0, worst = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    sum += stages[s].total();
    if (stages[s].total() > worst) {
      worst = stages[s].total();
      out.slowest_stage = static_cast<int64_t>(s);
    }
  }
  const StageCost& slow = stages[static_cast<size_t>(out.slowest_stage)];
  const double pipe = sum + (M - 1) * worst;
  out.compute = M * slow.compute;
  out.tp_comm = M * slow.tp;
  out.pp_comm = M * slow.pp;
  out.bubble = pipe - M * worst;
  out.dp_comm = dp_worst;
  out.optimizer = optim_worst;
  out.total = pipe + dp_worst + optim_worst;
  out.tokens_per_step = static_cast<double>(l.global_batch() * m.ctx_len);
  out.tokens_per_s = out.tokens_per_step / out.total;
  out.mfu = out.tokens_per_s * model_flops_per_token(m) / (static_cast<double>(world) * c.rank_flops(world));
  return out;
}

}  // namespace rwkv::planner
