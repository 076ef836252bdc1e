#include "planner/report.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "planner/units.h"

namespace rwkv::planner {

using nlohmann::json;

namespace {

std::string row(const char* fmt, auto... args) {
  char line[512];
  std::snprintf(line, sizeof line, fmt, args...);
  return line;
}

std::string grouped(int64_t n) {  // 14148597760 -> 14,148,597,760
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

const char* schedule_name(trainer::PipelineSchedule s) { return s == trainer::PipelineSchedule::GPipe ? "gpipe" : "1f1b"; }

}  // namespace

std::string format_plan_details(const Plan& p) {
  const MemoryBreakdown& b = p.memory;
  const StepTime& s = p.time;
  const bool zero = p.layout.zero && p.layout.dp > 1;
  std::string out = str_cat("layout ", p.layout.str(), " (", p.layout.world(), " ranks)\n");
  out += str_cat("  memory per rank (pipeline stage ", b.stage, ", ", grouped(b.parameters), " parameters):\n");
  out += row("    params        %10s\n", format_gib(b.params).c_str());
  out += row("    grads         %10s\n", format_gib(b.grads).c_str());
  out += row("    master        %10s\n", format_gib(b.master).c_str());
  out += row("    optimizer     %10s   (%s; replicated m, v %s, ZeRO-1 shard of m, v, master %s)\n",
             format_gib(b.optimizer).c_str(), zero ? "ZeRO-1" : "replicated", format_gib(b.optimizer_replicated).c_str(),
             format_gib(b.optimizer_zero1).c_str());
  out += row("    activations   %10s   (no recompute %s, recompute %s; %lld micro-batch%s in flight)\n",
             format_gib(b.activations).c_str(), format_gib(b.activations_full).c_str(),
             format_gib(b.activations_recompute).c_str(), static_cast<long long>(b.in_flight), b.in_flight == 1 ? "" : "es");
  out += row("    comm buffers  %10s\n", format_gib(b.comm_buffers).c_str());
  out += row("    overhead      %10s\n", format_gib(b.overhead).c_str());
  out += row("    steady total  %10s\n", format_gib(b.steady).c_str());
  if (b.init_peak > 0) out += row("    start-up peak %10s   (whole-model init, host memory)\n", format_gib(b.init_peak).c_str());
  out += row("    peak          %10s   of %s usable: %s\n", format_gib(b.total).c_str(), format_gib(p.memory_limit).c_str(),
             p.fits ? "fits" : "DOES NOT FIT");
  out += row("  step time (slowest pipeline stage %lld):\n", static_cast<long long>(s.slowest_stage));
  out += row("    compute %s, tp %s, pp %s, bubble %s, dp %s, optimizer %s\n", format_seconds(s.compute).c_str(),
             format_seconds(s.tp_comm).c_str(), format_seconds(s.pp_comm).c_str(), format_seconds(s.bubble).c_str(),
             format_seconds(s.dp_comm).c_str(), format_seconds(s.optimizer).c_str());
  out += row("    step %s for %.0f tokens: %s tokens/s, MFU %.1f%%\n", format_seconds(s.total).c_str(), s.tokens_per_step,
             format_count(s.tokens_per_s).c_str(), 100 * s.mfu);
  return out;
}

std::string format_report(const ModelSpec& m, const Cluster& c, const CostTarget& t, const SearchResult& r, int64_t top) {
  std::string out = str_cat("rwkv-plan: ", m.name, " (L", m.n_layer, " C", m.n_embd, " F", m.dim_ffn, " V", m.vocab_size, ", ",
                            grouped(total_parameters(m)), " parameters, ctx ", m.ctx_len, ")\n");
  out += row("  cluster %s: %lld node%s x %lld device%s, %s each, %.1f TFLOP/s, memory %.0f GB/s, intra %.1f GB/s, inter %.1f GB/s%s\n",
             c.name.c_str(), static_cast<long long>(c.nodes), c.nodes == 1 ? "" : "s", static_cast<long long>(c.gpus_per_node),
             c.gpus_per_node == 1 ? "" : "s", format_gib(c.memory_bytes).c_str(), c.peak_flops / 1e12, c.mem_bw / 1e9,
             c.intra_bw / 1e9, c.inter_bw / 1e9, c.shared_node ? " (shared by the node's ranks)" : "");
  out += str_cat("  target ", t.name, t.reduce_bytes > 0 ? str_cat(" (dp gradients on a ", t.reduce_bytes, "-byte wire)") : "",
                 "; ", r.world, " ranks; global batch ", r.global_batch, " x ", m.ctx_len, " = ",
                 grouped(r.global_batch * m.ctx_len), " tokens per step; ", r.plans.size(), " layouts evaluated, ", r.fitting,
                 " fit\n\n");
  out += "   #   dp  tp  pp  mb   ga zero rec    mem/rank       step    tok/s    MFU |  compute       tp       pp   bubble       dp    optim\n";
  const int64_t shown = std::min<int64_t>(top, static_cast<int64_t>(r.plans.size()));
  for (int64_t i = 0; i < shown; ++i) {
    const Plan& p = r.plans[static_cast<size_t>(i)];
    const Layout& l = p.layout;
    const StepTime& s = p.time;
    out += row("%4lld %4lld %3lld %3lld %3lld %4lld %4s %3s %11s %10s %8s %5.1f%% | %8s %8s %8s %8s %8s %8s%s\n",
               static_cast<long long>(i + 1), static_cast<long long>(l.dp), static_cast<long long>(l.tp),
               static_cast<long long>(l.pp), static_cast<long long>(l.micro_batch), static_cast<long long>(l.grad_accum),
               l.zero && l.dp > 1 ? "yes" : "no", l.recompute ? "yes" : "no", format_gib(p.memory.total).c_str(),
               format_seconds(s.total).c_str(), format_count(s.tokens_per_s).c_str(), 100 * s.mfu,
               format_seconds(s.compute).c_str(), format_seconds(s.tp_comm).c_str(), format_seconds(s.pp_comm).c_str(),
               format_seconds(s.bubble).c_str(), format_seconds(s.dp_comm).c_str(), format_seconds(s.optimizer).c_str(),
               p.fits ? "" : "  (does not fit)");
  }
  if (shown < static_cast<int64_t>(r.plans.size()))
    out += str_cat("   ... ", static_cast<int64_t>(r.plans.size()) - shown, " more (--top N shows more)\n");
  out += "\nbest: " + format_plan_details(r.plans.front());
  return out;
}

json plan_json(const Plan& p) {
  const Layout& l = p.layout;
  const MemoryBreakdown& b = p.memory;
  const StepTime& s = p.time;
  return {{"layout",
           {{"dp", l.dp}, {"tp", l.tp}, {"pp", l.pp}, {"micro_batch", l.micro_batch}, {"grad_accum", l.grad_accum},
            {"zero", l.zero && l.dp > 1}, {"recompute", l.recompute}, {"schedule", schedule_name(l.schedule)}}},
          {"fits", p.fits},
          {"memory_bytes",
           {{"stage", b.stage}, {"parameters", b.parameters}, {"params", b.params}, {"grads", b.grads}, {"master", b.master},
            {"optimizer", b.optimizer}, {"optimizer_replicated", b.optimizer_replicated}, {"optimizer_zero1", b.optimizer_zero1},
            {"activations", b.activations}, {"activations_full", b.activations_full},
            {"activations_recompute", b.activations_recompute}, {"in_flight", b.in_flight}, {"comm_buffers", b.comm_buffers},
            {"overhead", b.overhead}, {"steady", b.steady}, {"init_peak", b.init_peak}, {"total", b.total},
            {"usable", p.memory_limit}}},
          {"time_s",
           {{"slowest_stage", s.slowest_stage}, {"compute", s.compute}, {"tp_comm", s.tp_comm}, {"pp_comm", s.pp_comm},
            {"bubble", s.bubble}, {"dp_comm", s.dp_comm}, {"optimizer", s.optimizer}, {"step", s.total}}},
          {"tokens_per_step", s.tokens_per_step}, {"tokens_per_s", s.tokens_per_s}, {"mfu", s.mfu}};
}

json report_json(const ModelSpec& m, const Cluster& c, const CostTarget& t, const SearchResult& r, int64_t top) {
  json plans = json::array();
  const int64_t shown = std::min<int64_t>(top, static_cast<int64_t>(r.plans.size()));
  for (int64_t i = 0; i < shown; ++i) plans.push_back(plan_json(r.plans[static_cast<size_t>(i)]));
  return {{"model",
           {{"name", m.name}, {"n_layer", m.n_layer}, {"n_embd", m.n_embd}, {"dim_ffn", m.dim_ffn},
            {"vocab_size", m.vocab_size}, {"ctx_len", m.ctx_len}, {"parameters", total_parameters(m)}}},
          {"cluster",
           {{"name", c.name}, {"nodes", c.nodes}, {"gpus_per_node", c.gpus_per_node}, {"memory_bytes", c.memory_bytes},
            {"peak_flops", c.peak_flops}, {"mem_bw", c.mem_bw}, {"intra_bw", c.intra_bw}, {"inter_bw", c.inter_bw},
            {"shared_node", c.shared_node}}},
          {"target",
           {{"name", t.name}, {"param_bytes", t.param_bytes}, {"grad_bytes", t.grad_bytes}, {"reduce_bytes", t.wire_grad_bytes()}, {"gather_bytes", t.gather_bytes > 0 ? t.gather_bytes : t.param_bytes}, {"mixed_gather_bytes", t.mixed_gather_bytes}, {"gather_overlap", t.gather_overlap}, {"master_bytes", t.master_bytes},
            {"adam_bytes", t.adam_bytes}, {"act_bytes", t.act_bytes}, {"gemm_efficiency", t.gemm_efficiency},
            {"mem_efficiency", t.mem_efficiency}, {"intra_efficiency", t.intra_efficiency},
            {"inter_efficiency", t.inter_efficiency}, {"dp_overlap", t.dp_overlap}, {"runtime_overhead", t.runtime_overhead}}},
          {"world", r.world}, {"global_batch", r.global_batch}, {"evaluated", r.plans.size()}, {"fitting", r.fitting},
          {"plans", plans}};
}

}  // namespace rwkv::planner
