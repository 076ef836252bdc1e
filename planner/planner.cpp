#include "planner/planner.h"

#include <algorithm>

#include "core/error.h"
#include "planner/units.h"

namespace rwkv::planner {

namespace {

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(d);
  return out;
}

std::string memory_terms(const MemoryBreakdown& b) {
  return str_cat("params ", format_gib(b.params), ", grads ", format_gib(b.grads), ", master ", format_gib(b.master),
                 ", optimizer ", format_gib(b.optimizer), ", activations ", format_gib(b.activations));
}

}  // namespace

double usable_memory(const Cluster& c, const CostTarget& t, int64_t world) { return c.rank_memory(world) * t.memory_usable; }

Plan evaluate(const ModelSpec& m, const Layout& layout, const Cluster& c, const CostTarget& t) {
  validate_layout(m, layout);
  Plan p;
  p.layout = layout;
  p.memory = rank_memory(m, layout, t);
  p.time = step_time(m, layout, c, t);
  p.memory_limit = usable_memory(c, t, layout.world());
  p.fits = p.memory.total <= p.memory_limit;
  return p;
}

SearchResult search(const ModelSpec& m, const Cluster& c, const CostTarget& t, const SearchOptions& o) {
  c.validate();
  SearchResult r;
  RWKV_CHECK(o.world >= 0, "--world must be positive, got ", o.world, "\n  ---> HINT: leave it out to use every device");
  r.world = o.world > 0 ? o.world : c.devices();
  RWKV_CHECK(r.world <= c.devices(), "--world ", r.world, " exceeds the cluster's ", c.devices(), " devices (",
             c.nodes, " nodes x ", c.gpus_per_node, ")\n  ---> HINT: raise --nodes or --gpus-per-node, or lower --world");
  r.global_batch = o.global_batch > 0 ? o.global_batch : m.global_batch;
  RWKV_CHECK(r.global_batch >= 1, "--global-batch must be at least 1 sequence, got ", r.global_batch);
  for (int64_t fixed : {o.dp, o.tp, o.pp})
    RWKV_CHECK(fixed >= 0, "--layout factors must be at least 1, got dp=", o.dp, " tp=", o.tp, " pp=", o.pp);
  if (o.dp && o.tp && o.pp) {
    RWKV_CHECK(o.dp * o.tp * o.pp == r.world, "layout dp=", o.dp, " x tp=", o.tp, " x pp=", o.pp, " = ",
               o.dp * o.tp * o.pp, " ranks, but the cluster has ", r.world, "\n  ---> HINT: pass --world ",
               o.dp * o.tp * o.pp, " or a layout whose product is ", r.world);
  }
  int64_t candidates = 0;
  for (int64_t tp : divisors(r.world)) {
    if ((o.tp && tp != o.tp) || m.n_embd % tp || m.dim_ffn % tp) continue;
    if (!o.tp && !o.tp_across_nodes && tp > c.gpus_per_node) continue;
    for (int64_t pp : divisors(r.world / tp)) {
      if ((o.pp && pp != o.pp) || pp > m.n_layer) continue;
      const int64_t dp = r.world / (tp * pp);
      if ((o.dp && dp != o.dp) || r.global_batch % dp) continue;
      const int64_t per_replica = r.global_batch / dp;
      for (int64_t B : divisors(per_replica)) {
        if ((o.micro_batch && B != o.micro_batch) || (!o.micro_batch && B > o.max_micro_batch)) continue;
        for (bool zero : o.zero) {
          if (zero && dp == 1) continue;  // nothing to shard over
          for (bool recompute : o.recompute) {
            Layout l;
            l.dp = dp, l.tp = tp, l.pp = pp, l.micro_batch = B, l.grad_accum = per_replica / B;
            l.zero = zero, l.recompute = recompute, l.schedule = o.schedule;
            l.vocab_pad_multiple = o.vocab_pad_multiple;
            r.plans.push_back(evaluate(m, l, c, t));
            ++candidates;
          }
        }
      }
    }
  }
  RWKV_CHECK(candidates > 0, "no layout of ", r.world, " ranks can run ", m.name, " (L", m.n_layer, " C", m.n_embd,
             ") with a global batch of ", r.global_batch, " sequences",
             o.dp || o.tp || o.pp || o.micro_batch ? " and the given --layout/--micro-batch" : "",
             ": tp must divide C and F, pp be at most L, dp divide the global batch and micro_batch the replica's share",
             "\n  ---> HINT: change --global-batch (a multiple of the dp you want) or --world, or drop the fixed factors");
  std::stable_sort(r.plans.begin(), r.plans.end(), [](const Plan& a, const Plan& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.fits) return a.time.tokens_per_s > b.time.tokens_per_s;
    return a.memory.total < b.memory.total;
  });
  for (const Plan& p : r.plans) r.fitting += p.fits ? 1 : 0;
  if (r.fitting == 0) {
    const Plan& best = r.plans.front();  // the smallest memory
    const bool tried_all = std::find(o.zero.begin(), o.zero.end(), true) != o.zero.end() &&
                           std::find(o.recompute.begin(), o.recompute.end(), true) != o.recompute.end() && !o.micro_batch;
    RWKV_FAIL(m.name, " does not fit on ", r.world, " devices of ", format_gib(c.rank_memory(r.world)), ": the smallest of ",
              r.plans.size(), " layouts (", best.layout.str(), ") needs ", format_gib(best.memory.total),
              " per device, above the ", format_gib(best.memory_limit), " usable (", memory_terms(best.memory), ")",
              tried_all ? "\n  ---> HINT: add devices (--nodes, --gpus-per-node) or memory (--gpu-memory); ZeRO-1, "
                          "recompute and every micro-batch were tried"
                        : "\n  ---> HINT: add devices (--nodes), or let the search try ZeRO-1, recompute and smaller "
                          "micro-batches (--zero both --recompute both, no --micro-batch)");
  }
  return r;
}

}  // namespace rwkv::planner
