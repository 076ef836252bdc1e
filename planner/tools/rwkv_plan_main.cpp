// rwkv-plan: per-device memory and step time of RWKV-4 training layouts on a
// cluster, ranked by predicted tokens/s (planner/planner.h).
//
//   rwkv-plan --model 14B --cluster a100-80g --nodes 8
//   rwkv-plan --model configs/rwkv4-14b.yaml --nodes 8 --gpus-per-node 8 --gpu-memory 80GiB
//             --tflops 312 --intra-bw 600GB/s --inter-bw 200Gb/s --layout 8x4x2 --json
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "planner/planner.h"
#include "planner/report.h"
#include "planner/units.h"

namespace {

using namespace rwkv::planner;

const char* kUsage =
    "usage: rwkv-plan --model NAME|CONFIG [cluster] [layout] [options]\n"
    "\n"
    "model:\n"
    "  --model M            169M, 430M, 1.5B, 3B, 7B, 14B (RWKV-4-Pile, ctx 1024) or a training config (YAML)\n"
    "  --ctx T              tokens per sequence (default: the model's)\n"
    "  --global-batch S     sequences per optimizer step (default: the config's, 128 for the Pile names)\n"
    "cluster (a preset, or every value given; flags override a preset's values):\n"
    "  --cluster NAME       a100-80g, h100-80g (8 GPUs a node) or cpu (this machine's measured rates)\n"
    "  --nodes N            nodes (default 1)\n"
    "  --gpus-per-node G    devices per node\n"
    "  --gpu-memory X       memory per device, e.g. 80GiB\n"
    "  --tflops F           dense bf16 TFLOP/s per device (--gflops for CPUs)\n"
    "  --mem-bw X           device memory bandwidth, e.g. 2039GB/s (default 2000GB/s)\n"
    "  --intra-bw X         per-device bandwidth inside a node, e.g. 600GB/s\n"
    "  --inter-bw X         per-device bandwidth between nodes, e.g. 200Gb/s (bits) or 25GB/s\n"
    "layout (fix any part; the rest is searched):\n"
    "  --layout DPxTPxPP    e.g. 2x4x8; or --dp N --tp N --pp N separately\n"
    "  --world N            ranks to use (default: every device)\n"
    "  --micro-batch B      sequences per micro-batch\n"
    "  --zero on|off|both   ZeRO-1 (default both)\n"
    "  --recompute on|off|both  per-block activation recompute (default both)\n"
    "  --schedule 1f1b|gpipe    pipeline schedule (default 1f1b)\n"
    "  --vocab-pad N        pad the vocabulary to a multiple of N (and of tp)\n"
    "  --tp-across-nodes    also try tensor-parallel groups larger than a node\n"
    "cost model:\n"
    "  --target T           gpu-bf16 (default on GPUs) or cpu-fp32 (rwkv-train on CPUs; default with --cluster cpu)\n"
    "  --gemm-eff F --mem-eff F --intra-eff F --inter-eff F   achieved / peak rates (0..1]\n"
    "  --dp-overlap F       share of the dp gradient reduction hidden behind backward (default 0; rwkv-train\n"
    "                       overlaps dp all-reduces and ZeRO-1 reduce-scatters with the last backward, a share\n"
    "                       not yet measured on GPUs)\n"
    "  --gather-overlap on|off  ZeRO-1's bf16 parameter all-gather runs into the next forward (gpu-bf16: on,\n"
    "                       as rwkv-train does; off: after AdamW, exposed, as DeepSpeed's ZeRO-2 step)\n"
    "  --grad-bytes N       bytes of a gradient element, 2 or 4 (gpu-bf16: 4, rwkv-train's f32 gradients;\n"
    "                       2 models a trainer with bf16 gradients and every parameter gathered in bf16, such as DeepSpeed bf16)\n"
    "  --grad-reduce bf16|fp32  the dtype dp gradient buckets travel in (default: the gradients'; bf16 models\n"
    "                       rwkv-train's parallel.grad_reduce_dtype: bf16, f32 gradients rounded on the wire)\n"
    "  --overhead X         fixed memory per rank, e.g. 1.5GiB\n"
    "output:\n"
    "  --top N              rows of the table (default 15)\n"
    "  --json               JSON instead of the table\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "rwkv-plan: error: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

std::vector<bool> switch_values(const std::string& v, const std::string& flag) {
  if (v == "on") return {true};
  if (v == "off") return {false};
  if (v == "both") return {false, true};
  RWKV_FAIL(flag, " expects on, off or both, got '", v, "'");
}

double fraction(const std::string& v, const std::string& flag, bool allow_zero) {
  const double x = parse_number(v, flag);
  RWKV_CHECK((allow_zero ? x >= 0 : x > 0) && x <= 1, flag, " expects a fraction in ", allow_zero ? "[0, 1]" : "(0, 1]",
             ", got ", v);
  return x;
}

// "2x4x8" -> dp 2, tp 4, pp 8.
void parse_layout(const std::string& v, SearchOptions& o) {
  int64_t f[3] = {0, 0, 0};
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t end = v.find('x', start);
    RWKV_CHECK((i < 2) == (end != std::string::npos), "--layout expects DPxTPxPP such as 2x4x8, got '", v, "'");
    f[i] = parse_integer(v.substr(start, end == std::string::npos ? std::string::npos : end - start), "--layout");
    RWKV_CHECK(f[i] >= 1, "--layout ", v, ": every factor must be at least 1\n  ---> HINT: e.g. --layout 2x4x8 (dp x tp x pp)");
    start = end + 1;
  }
  o.dp = f[0], o.tp = f[1], o.pp = f[2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string model_arg, preset, target_name;
    std::optional<int64_t> nodes, gpus_per_node, ctx;
    std::optional<double> memory, flops, mem_bw, intra_bw, inter_bw;
    std::optional<double> gemm_eff, mem_eff, intra_eff, inter_eff, dp_overlap, overhead, grad_bytes, reduce_bytes;
    std::optional<bool> gather_overlap;
    SearchOptions options;
    int64_t top = 15;
    bool as_json = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) usage_error(a + " needs a value");
        return argv[++i];
      };
      auto positive = [&](const std::string& flag, const std::string& v) {
        const int64_t n = parse_integer(v, flag);
        RWKV_CHECK(n >= 1, flag, " must be at least 1, got ", v);
        return n;
      };
      if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (a == "--model") model_arg = value();
      else if (a == "--ctx") ctx = positive(a, value());
      else if (a == "--global-batch") options.global_batch = positive(a, value());
      else if (a == "--cluster") preset = value();
      else if (a == "--nodes") nodes = parse_integer(value(), a);
      else if (a == "--gpus-per-node") gpus_per_node = parse_integer(value(), a);
      else if (a == "--gpu-memory") memory = parse_bytes(value(), a);
      else if (a == "--tflops") flops = parse_number(value(), a) * 1e12;
      else if (a == "--gflops") flops = parse_number(value(), a) * 1e9;
      else if (a == "--mem-bw") mem_bw = parse_bandwidth(value(), a);
      else if (a == "--intra-bw") intra_bw = parse_bandwidth(value(), a);
      else if (a == "--inter-bw") inter_bw = parse_bandwidth(value(), a);
      else if (a == "--layout") parse_layout(value(), options);
      else if (a == "--dp") options.dp = positive(a, value());
      else if (a == "--tp") options.tp = positive(a, value());
      else if (a == "--pp") options.pp = positive(a, value());
      else if (a == "--world") options.world = positive(a, value());
      else if (a == "--micro-batch") options.micro_batch = positive(a, value());
      else if (a == "--zero") options.zero = switch_values(value(), a);
      else if (a == "--recompute") options.recompute = switch_values(value(), a);
      else if (a == "--schedule") {
        const std::string v = value();
        RWKV_CHECK(v == "1f1b" || v == "gpipe", "--schedule expects 1f1b or gpipe, got '", v, "'");
        options.schedule = v == "gpipe" ? rwkv::trainer::PipelineSchedule::GPipe : rwkv::trainer::PipelineSchedule::OneFOneB;
      } else if (a == "--vocab-pad") options.vocab_pad_multiple = positive(a, value());
      else if (a == "--tp-across-nodes") options.tp_across_nodes = true;
      else if (a == "--target") target_name = value();
      else if (a == "--gemm-eff") gemm_eff = fraction(value(), a, false);
      else if (a == "--mem-eff") mem_eff = fraction(value(), a, false);
      else if (a == "--intra-eff") intra_eff = fraction(value(), a, false);
      else if (a == "--inter-eff") inter_eff = fraction(value(), a, false);
      else if (a == "--dp-overlap") dp_overlap = fraction(value(), a, true);
      else if (a == "--overhead") overhead = parse_bytes(value(), a);
      else if (a == "--grad-bytes") {
        const std::string v = value();
        if (v != "2" && v != "4") usage_error("--grad-bytes expects 2 (bf16) or 4 (f32), got '" + v + "'");
        grad_bytes = std::stod(v);
      }
      else if (a == "--grad-reduce") {
        const std::string v = value();
        if (v != "bf16" && v != "fp32") usage_error("--grad-reduce expects bf16 or fp32, got '" + v + "'");
        reduce_bytes = v == "bf16" ? 2.0 : 4.0;
      }
      else if (a == "--gather-overlap") {
        const std::string v = value();
        if (v != "on" && v != "off") usage_error("--gather-overlap expects on or off, got '" + v + "'");
        gather_overlap = v == "on";
      }
      else if (a == "--top") top = positive(a, value());
      else if (a == "--json") as_json = true;
      else usage_error("unknown argument '" + a + "'");
    }
    if (model_arg.empty()) usage_error("--model is required (a Pile name such as 14B, or a config file)");

    ModelSpec model = resolve_model(model_arg);
    if (ctx) model.ctx_len = *ctx;

    Cluster cluster;
    if (!preset.empty()) {
      cluster = cluster_preset(preset, nodes.value_or(1));
    } else {
      cluster.name = "custom";
      const char* hint = "\n  ---> HINT: name a preset (--cluster a100-80g, h100-80g or cpu) or give --gpus-per-node, "
                         "--gpu-memory, --tflops and --intra-bw (and --inter-bw for several nodes)";
      RWKV_CHECK(gpus_per_node && memory && flops && intra_bw, "without --cluster, ",
                 !gpus_per_node ? "--gpus-per-node" : !memory ? "--gpu-memory" : !flops ? "--tflops" : "--intra-bw",
                 " is required", hint);
      cluster.mem_bw = 2000e9;
    }
    if (nodes) cluster.nodes = *nodes;
    if (gpus_per_node) cluster.gpus_per_node = *gpus_per_node;
    if (memory) cluster.memory_bytes = *memory;
    if (flops) cluster.peak_flops = *flops;
    if (mem_bw) cluster.mem_bw = *mem_bw;
    if (intra_bw) cluster.intra_bw = *intra_bw;
    if (inter_bw) cluster.inter_bw = *inter_bw;
    cluster.validate();

    CostTarget target = target_preset(!target_name.empty() ? target_name : cluster.shared_node ? "cpu-fp32" : "gpu-bf16");
    if (gemm_eff) target.gemm_efficiency = *gemm_eff;
    if (mem_eff) target.mem_efficiency = *mem_eff;
    if (intra_eff) target.intra_efficiency = *intra_eff;
    if (inter_eff) target.inter_efficiency = *inter_eff;
    if (dp_overlap) target.dp_overlap = *dp_overlap;
    if (overhead) target.runtime_overhead = *overhead;
    if (gather_overlap) target.gather_overlap = *gather_overlap;
    if (grad_bytes) {
      target.grad_bytes = *grad_bytes;
      // bf16 gradients (DeepSpeed's bf16): every ZeRO-1 bucket gathered in bf16 too.
      if (*grad_bytes == 2) target.gather_bytes = 2, target.mixed_gather_bytes = 0;
    }
    if (reduce_bytes) target.reduce_bytes = *reduce_bytes == target.grad_bytes ? 0 : *reduce_bytes;

    const SearchResult result = search(model, cluster, target, options);
    if (as_json) {
      std::printf("%s\n", report_json(model, cluster, target, result, top).dump(1).c_str());
    } else {
      std::fputs(format_report(model, cluster, target, result, top).c_str(), stdout);
    }
    return 0;
  } catch (const rwkv::Error& e) {
    std::fprintf(stderr, "rwkv-plan: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-plan: internal error: %s\n", e.what());
    return 3;
  }
}
