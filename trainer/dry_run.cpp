#include "trainer/dry_run.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "parallel/data_parallel.h"
#include "planner/layout.h"
#include "planner/units.h"
#include "trainer/zero_checkpoint.h"

namespace rwkv::trainer {

namespace {

constexpr int64_t kMiniVocabRows = 1009;  // a prime: never a multiple of the miniature's other sizes

// The miniature of the real model for a partition with tp ranks: every
// dimension a distinct number, so that each one identifies its role.
//   C_m = 2 tp, F_m = 3 tp (local widths 2 and 3), V_p,m = 1009 tp (local 1009),
//   V_m = V_p,m - 1 (at least one padding row, as a padded real vocabulary may have)
// 1 (the leading dims of time_mix [1, 1, C]) keeps its meaning.
struct Miniature {
  Rwkv4Shape shape;
  Rwkv4Partition part;
  std::map<int64_t, int64_t> dims;  // miniature size -> real size
};

Miniature miniature(const Rwkv4Shape& real, const Rwkv4Partition& part) {
  const int64_t tp = part.tp_size;
  Miniature m;
  m.shape = {real.n_layer, 2 * tp, kMiniVocabRows * tp - 1, 3 * tp};
  m.part = part;
  m.part.padded_vocab = kMiniVocabRows * tp;
  m.dims = {{1, 1},
            {2, real.n_embd / tp},
            {3, real.dim_ffn / tp},
            {2 * tp, real.n_embd},
            {3 * tp, real.dim_ffn},
            {kMiniVocabRows, part.padded_vocab / tp},
            {kMiniVocabRows * tp - 1, real.vocab_size}};
  return m;
}

int64_t real_dim(const Miniature& m, int64_t mini, const std::string& name) {
  const auto it = m.dims.find(mini);
  RWKV_CHECK(it != m.dims.end(), "dry run: parameter '", name, "' has a dimension ", mini,
             " that the miniature model does not know (rwkv4_parameters.cpp declares a new kind of shape?)");
  return it->second;
}

std::string rank_file(int64_t rank) {
  char name[48];
  std::snprintf(name, sizeof name, "rank%05lld.safetensors", static_cast<long long>(rank));
  return name;
}

// Boxes a and b overlap when they do in every dimension.
bool overlaps(const checkpoint::ManifestSlice& a, const checkpoint::ManifestSlice& b) {
  for (size_t d = 0; d < a.shape.size(); ++d)
    if (a.offset[d] >= b.offset[d] + b.shape[d] || b.offset[d] >= a.offset[d] + a.shape[d]) return false;
  return true;
}

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// One tensor slice a rank's checkpoint shard holds.
struct StoredSlice {
  std::string name, kind;
  Shape offset, shape;
};

// The boxes of dp rank `dp_rank`'s ZeRO-1 shard of this rank's parameters,
// as rwkv-train cuts them (trainer/zero_checkpoint.h, shard_regions): the
// same bucketed partition (parallel/data_parallel.h) of the same flat f32
// layout, without allocating a tensor.
std::vector<StoredSlice> zero_shard_boxes(const std::vector<ParameterShape>& params, int64_t dp, int64_t dp_rank,
                                          int64_t bucket_bytes) {
  std::vector<int64_t> numels;
  for (const ParameterShape& p : params) numels.push_back(shape_numel(p.shape));
  const parallel::FlatLayout layout(numels, DType::F32, Device::cpu());
  const parallel::ZeroPartition partition(layout, static_cast<int>(dp), parallel::kZeroAlign,
                                          parallel::bucket_elems_for(bucket_bytes, DType::F32));
  std::vector<StoredSlice> boxes;
  for (const parallel::ShardPiece& piece : partition.pieces(static_cast<int>(dp_rank))) {
    const ParameterShape& p = params[static_cast<size_t>(piece.tensor)];
    for (const RunBox& box : run_boxes(p.name, p.shape, p.global_shape, p.global_offset, piece.tensor_offset, piece.length))
      boxes.push_back({p.name, "", box.global_offset, box.shape});
  }
  return boxes;
}

// What one rank's checkpoint shard holds, in the order rwkv-train's
// save_request lists it (train_loop.cpp): with ZeRO-1 the boxes of every dp
// rank's shard (masters, then moments), else dp rank 0's parameters and moments;
// tp-replicated tensors from tp rank 0 only; vocabulary padding rows left out.
std::vector<StoredSlice> rank_checkpoint(const std::vector<ParameterShape>& params, int64_t dp, bool zero,
                                         int64_t bucket_bytes, int64_t dp_rank, int64_t tp_rank) {
  std::vector<StoredSlice> out;
  if (zero) {
    for (const StoredSlice& b : zero_shard_boxes(params, dp, dp_rank, bucket_bytes)) {
      bool replicated = false;
      for (const ParameterShape& p : params) replicated = replicated || (p.name == b.name && p.tp_replicated);
      if (replicated && tp_rank > 0) continue;
      out.push_back({b.name, "param", b.offset, b.shape});
      out.push_back({b.name, "adam_m", b.offset, b.shape});
      out.push_back({b.name, "adam_v", b.offset, b.shape});
    }
    return out;
  }
  if (dp_rank != 0) return out;
  for (const ParameterShape& p : params) {
    if (p.tp_replicated && tp_rank > 0) continue;
    Shape stored = p.shape;
    if (stored.size() == 2) {
      const int64_t rows = std::min(stored[0], p.global_shape[0] - p.global_offset[0]);
      if (rows > 0 && rows < stored[0]) stored[0] = rows;
    }
    out.push_back({p.name, "param", p.global_offset, stored});
    out.push_back({p.name, "adam_m", p.global_offset, stored});
    out.push_back({p.name, "adam_v", p.global_offset, stored});
  }
  return out;
}

}  // namespace

std::vector<ParameterShape> declare_rwkv4_shapes(const Rwkv4Shape& shape, const Rwkv4Partition& part_in) {
  const Rwkv4Partition part = part_in.layer_end == 0 ? Rwkv4Partition::whole(shape) : part_in;
  part.validate(shape);
  const Miniature mini = miniature(shape, part);
  const ParameterStore store = declare_rwkv4_parameters(mini.shape, DType::F32, Device::cpu(), mini.part);
  std::vector<ParameterShape> out;
  for (const NamedTensor& e : store.entries()) {
    ParameterShape p;
    p.name = e.name;
    p.tp_replicated = part.tp_size > 1 && e.tp_replicated;
    const Shape local = e.value.shape(), global = e.global(), offset = e.offset();
    for (size_t d = 0; d < local.size(); ++d) {
      p.shape.push_back(real_dim(mini, local[d], e.name));
      p.global_shape.push_back(real_dim(mini, global[d], e.name));
      // Slices start at a whole number of slice widths (index = tp rank).
      p.global_offset.push_back(offset[d] / local[d] * p.shape[d]);
    }
    out.push_back(std::move(p));
  }
  return out;
}

void validate_manifest_coverage(const checkpoint::Manifest& manifest, const std::vector<ParameterShape>& whole) {
  std::map<std::pair<std::string, std::string>, const checkpoint::ManifestTensor*> found;
  for (const checkpoint::ManifestTensor& t : manifest.tensors) {
    const bool fresh = found.emplace(std::make_pair(t.name, t.kind), &t).second;
    RWKV_CHECK(fresh, "manifest: ", t.kind, " '", t.name, "' is listed twice");
  }
  RWKV_CHECK(found.size() == 3 * whole.size(), "manifest: ", found.size(), " tensors, but the model has ", whole.size(),
             " parameters x 3 kinds = ", 3 * whole.size());
  for (const ParameterShape& p : whole) {
    for (const char* kind : {"param", "adam_m", "adam_v"}) {
      const auto it = found.find({p.name, kind});
      RWKV_CHECK(it != found.end(), "manifest: no ", kind, " '", p.name, "'");
      const checkpoint::ManifestTensor& t = *it->second;
      RWKV_CHECK(t.shape == p.global_shape, "manifest: ", kind, " '", p.name, "' has global shape ", shape_str(t.shape),
                 ", the model declares ", shape_str(p.global_shape));
      int64_t covered = 0;
      for (size_t i = 0; i < t.slices.size(); ++i) {
        const checkpoint::ManifestSlice& s = t.slices[i];
        for (size_t d = 0; d < t.shape.size(); ++d)
          RWKV_CHECK(s.offset[d] + s.shape[d] <= t.shape[d], "manifest: a slice of ", kind, " '", p.name, "' at ",
                     shape_str(s.offset), " of shape ", shape_str(s.shape), " lies outside ", shape_str(t.shape));
        for (size_t j = 0; j < i; ++j)
          RWKV_CHECK(!overlaps(s, t.slices[j]), "manifest: two slices of ", kind, " '", p.name, "' overlap (",
                     s.file, " at ", shape_str(s.offset), " and ", t.slices[j].file, " at ", shape_str(t.slices[j].offset),
                     "): a replica wrote its copy too");
        covered += shape_numel(s.shape);
      }
      // Disjoint boxes inside the tensor that add up to its size tile it.
      RWKV_CHECK(covered == shape_numel(t.shape), "manifest: the slices of ", kind, " '", p.name, "' cover ", covered,
                 " of its ", shape_numel(t.shape), " elements");
    }
  }
}

DryRunResult dry_run(const TrainConfig& config, const std::string& dir) {
  const ModelConfig& mc = config.model;
  const ParallelConfig& pc = config.parallel;
  const Rwkv4Shape shape{mc.n_layer, mc.n_embd, mc.vocab_size, mc.dim_ffn};
  const planner::ModelSpec spec{"config", mc.n_layer, mc.n_embd, mc.dim_ffn, mc.vocab_size, mc.ctx_len, global_batch(config)};
  const planner::Layout layout = planner::layout_from_config(config);
  planner::validate_layout(spec, layout);
  // rwkv-train allocates f32 parameters, gradients, moments and activations
  // on either device in fp32 (train_loop.cpp); the fixed overhead differs.
  planner::CostTarget target = planner::target_preset("cpu-fp32");
  if (config.device == DeviceKind::Cuda) target.runtime_overhead = planner::target_preset("gpu-bf16").runtime_overhead;
  if (config.train.precision == Precision::BF16) {
    // trainer/precision_plan.h: bf16 copies and activations beside f32
    // masters, f32 gradients (not the gpu-bf16 preset's bf16 ones) and moments.
    target.param_bytes = 2;
    target.master_bytes = 4;
    target.grad_bytes = 4;
    target.act_bytes = 2;
  }
  if (config.parallel.grad_reduce_dtype == Precision::BF16) target.reduce_bytes = 2;  // the dp wire

  DryRunResult result;
  checkpoint::Manifest& m = result.manifest;
  m.layout = {pc.dp, pc.tp, pc.pp, pc.zero};
  m.config_yaml = config_to_yaml(config);
  m.config_digest = config_digest_hex(config);
  const int64_t world = pc.dp * pc.tp * pc.pp;
  std::map<std::pair<std::string, std::string>, size_t> tensor_index;  // (name, kind) -> m.tensors
  for (int64_t rank = 0; rank < world; ++rank) {
    // rank = tp_rank + tp (dp_rank + dp pp_rank)   (parallel/topology.h)
    DryRunRank r;
    r.rank = rank;
    r.tp_rank = rank % pc.tp;
    r.dp_rank = rank / pc.tp % pc.dp;
    r.pp_rank = rank / (pc.tp * pc.dp);
    r.part = layout.part(spec, r.pp_rank);
    r.part.tp_rank = r.tp_rank;
    const std::vector<ParameterShape> params = declare_rwkv4_shapes(shape, r.part);
    for (const ParameterShape& p : params) r.parameters += shape_numel(p.shape);
    const int64_t expected = planner::local_parameters(spec, r.part);
    RWKV_CHECK(r.parameters == expected, "dry run: rank ", rank, " declares ", r.parameters,
               " parameters, the planner counts ", expected, " (planner/model_spec.cpp and rwkv4_parameters.cpp disagree)");
    r.memory = planner::stage_memory(spec, layout, target, r.pp_rank);

    // This rank's part of the checkpoint. Keys as CheckpointStore writes them:
    // "kind/name", a later box of the same tensor "kind/name@[offset]".
    const std::string file = rank_file(rank);
    uint64_t bytes = 0;
    std::set<std::string> keys;
    for (const StoredSlice& piece : rank_checkpoint(params, pc.dp, pc.zero && pc.dp > 1, pc.bucket_bytes(), r.dp_rank, r.tp_rank)) {
      // Tensors in the order ranks first name them, slices in rank order (CheckpointStore::write_manifest).
      auto [it, fresh] = tensor_index.emplace(std::make_pair(piece.name, piece.kind), m.tensors.size());
      if (fresh) {
        checkpoint::ManifestTensor t;
        t.name = piece.name;
        t.kind = piece.kind;
        t.dtype = DType::F32;
        for (const ParameterShape& p : params)
          if (p.name == piece.name) t.shape = p.global_shape;
        m.tensors.push_back(std::move(t));
      }
      std::string key = piece.kind + "/" + piece.name;
      if (!keys.insert(key).second) {
        key.append("@").append(shape_str(piece.offset));
        keys.insert(key);
      }
      checkpoint::ManifestSlice slice;
      slice.file = file;
      slice.key = key;
      slice.offset = piece.offset;
      slice.shape = piece.shape;
      m.tensors[it->second].slices.push_back(std::move(slice));
      bytes += static_cast<uint64_t>(shape_numel(piece.shape)) * 4;
      ++result.slices;
    }
    checkpoint::ManifestFile f;
    f.name = file;
    f.rank = rank;
    f.bytes = bytes;  // the tensor payload; the file itself is never written
    m.files.push_back(std::move(f));
    result.ranks.push_back(std::move(r));
  }

  std::filesystem::create_directories(dir);
  result.manifest_path = (std::filesystem::path(dir) / checkpoint::kManifestName).string();
  rwkv::write_file_atomically(result.manifest_path, m.to_json());
  // Validate what was written, read back by the checkpoint's own parser (its
  // field and slice-bound checks), then the coverage of the whole model.
  const checkpoint::Manifest read = checkpoint::Manifest::from_json(rwkv::read_file(result.manifest_path), result.manifest_path);
  validate_manifest_coverage(read, declare_rwkv4_shapes(shape, Rwkv4Partition::whole(shape)));
  return result;
}

std::string format_dry_run(const TrainConfig& config, const DryRunResult& r) {
  const ModelConfig& mc = config.model;
  const ParallelConfig& pc = config.parallel;
  auto gib = [](double bytes) { return planner::format_gib(bytes); };
  std::string out = str_cat("dry run: RWKV-4 L", mc.n_layer, " C", mc.n_embd, " F", mc.dim_ffn, " V", mc.vocab_size, " (",
                            grouped(parameter_count(mc)), " parameters), layout dp=", pc.dp, " x tp=", pc.tp, " x pp=", pc.pp,
                            " = ", r.ranks.size(), " ranks, vocabulary padded to ", r.ranks.front().part.padded_vocab,
                            "; micro_batch ", config.train.micro_batch, " x ctx ", mc.ctx_len,
                            config.train.recompute ? ", recompute" : "", pc.zero && pc.dp > 1 ? ", ZeRO-1" : "",
                            "; f32 as rwkv-train allocates it, nothing allocated now\n");
  out += " rank  dp  tp  pp  blocks      parameters      params       grads   optimizer activations  comm+other       total  start-up (host)\n";
  for (const DryRunRank& k : r.ranks) {
    const planner::MemoryBreakdown& b = k.memory;
    char line[320];
    std::snprintf(line, sizeof line, "%5lld %3lld %3lld %3lld  [%2lld,%2lld) %15s %11s %11s %11s %11s %11s %11s  %s\n",
                  static_cast<long long>(k.rank), static_cast<long long>(k.dp_rank), static_cast<long long>(k.tp_rank),
                  static_cast<long long>(k.pp_rank), static_cast<long long>(k.part.layer_begin),
                  static_cast<long long>(k.part.layer_end), grouped(k.parameters).c_str(), gib(b.params).c_str(),
                  gib(b.grads).c_str(), gib(b.optimizer).c_str(), gib(b.activations).c_str(),
                  gib(b.comm_buffers + b.overhead + b.master).c_str(), gib(b.steady).c_str(), gib(b.init_peak).c_str());
    out += line;
  }
  int64_t total = 0;
  for (const DryRunRank& k : r.ranks)
    if (k.dp_rank == 0) total += k.parameters;
  out += str_cat("one replica (dp rank 0) holds ", grouped(total), " parameters including tp-replicated copies and vocabulary padding\n");
  out += str_cat("manifest: ", r.manifest_path, ": ", r.manifest.tensors.size(), " tensors (param, adam_m, adam_v), ",
                 r.slices, " slices in ", r.manifest.files.size(),
                 " files; valid: every tensor tiled exactly once by one replica's slices\n");
  return out;
}

}  // namespace rwkv::trainer
