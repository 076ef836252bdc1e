// RWKV-4 parameters: names, shapes, optimizer flags and the reference init.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "kernels/tensor_parallel.h"
#include "trainer/orthogonal_init.h"
#include "trainer/rwkv4_model.h"


namespace rwkv {

namespace {
std::string block_name(int64_t layer, const char* rest) { return str_cat("blocks.", layer, ".", rest); }
}  // namespace

std::vector<Rwkv4TensorSpec> rwkv4_tensor_specs(const Rwkv4Shape& s, const Rwkv4Partition& part_in) {
  RWKV_CHECK(s.n_layer >= 1 && s.n_embd >= 1 && s.vocab_size >= 1 && s.dim_ffn >= 1,
             "model shape must be positive: n_layer ", s.n_layer, ", n_embd ", s.n_embd, ", vocab_size ",
             s.vocab_size, ", dim_ffn ", s.dim_ffn);
  const Rwkv4Partition part = part_in.layer_end == 0 ? Rwkv4Partition::whole(s) : part_in;
  part.validate(s);
  const int64_t C = s.n_embd, F = s.dim_ffn, V = s.vocab_size, tp = part.tp_size, r = part.tp_rank;
  const int64_t Cl = C / tp, Fl = F / tp, Vl = part.local_vocab();
  std::vector<Rwkv4TensorSpec> p;
  // One tensor: its local shape, and where that slice sits in the global one.
  auto add = [&](const std::string& name, const Shape& local, const Shape& global, const Shape& offset, bool decay,
                 float lr_mult, bool replicated) {
    p.push_back({name, local, global, offset, decay, lr_mult, replicated && tp > 1,
                 replicated && tp > 1 && name.find("time_mix") != std::string::npos});
  };
  if (part.has_embedding()) add("emb.weight", {Vl, C}, {V, C}, {part.vocab_begin(), 0}, true, 1.0f, false);
  for (int64_t l = part.layer_begin; l < part.layer_end; ++l) {
    auto vec = [&](const char* rest) { add(block_name(l, rest), {C}, {C}, {0}, false, 1.0f, true); };
    auto mix = [&](const char* rest) { add(block_name(l, rest), {1, 1, C}, {1, 1, C}, {0, 0, 0}, false, 1.0f, true); };
    auto rows = [&](const char* rest, int64_t local_rows, int64_t global_rows, int64_t cols) {
      add(block_name(l, rest), {local_rows, cols}, {global_rows, cols}, {r * local_rows, 0}, true, 1.0f, false);
    };
    auto cols = [&](const char* rest, int64_t rows_, int64_t local_cols, int64_t global_cols) {
      add(block_name(l, rest), {rows_, local_cols}, {rows_, global_cols}, {0, r * local_cols}, true, 1.0f, false);
    };
    vec("ln1.weight");
    vec("ln1.bias");
    vec("ln2.weight");
    vec("ln2.bias");
    if (l == 0) {
      vec("ln0.weight");
      vec("ln0.bias");
    }
    add(block_name(l, "att.time_decay"), {Cl}, {C}, {r * Cl}, false, 2.0f, false);
    add(block_name(l, "att.time_first"), {Cl}, {C}, {r * Cl}, false, 3.0f, false);
    mix("att.time_mix_k");
    mix("att.time_mix_v");
    mix("att.time_mix_r");
    rows("att.key.weight", Cl, C, C);
    rows("att.value.weight", Cl, C, C);
    rows("att.receptance.weight", Cl, C, C);
    cols("att.output.weight", C, Cl, C);
    mix("ffn.time_mix_k");
    mix("ffn.time_mix_r");
    rows("ffn.key.weight", Fl, F, C);
    rows("ffn.receptance.weight", Cl, C, C);
    cols("ffn.value.weight", C, Fl, F);
  }
  if (part.has_head(s)) {
    add("ln_out.weight", {C}, {C}, {0}, false, 1.0f, true);
    add("ln_out.bias", {C}, {C}, {0}, false, 1.0f, true);
    add("head.weight", {Vl, C}, {V, C}, {part.vocab_begin(), 0}, true, 1.0f, false);
  }
  return p;
}

ParameterStore declare_rwkv4_parameters(const Rwkv4Shape& s, DType dtype, Device device, const Rwkv4Partition& part) {
  ParameterStore p;
  for (const Rwkv4TensorSpec& spec : rwkv4_tensor_specs(s, part)) {
    p.add(spec.name, spec.local_shape, dtype, spec.decay, spec.lr_multiplier, device);
    NamedTensor& e = p.entries().back();
    e.global_shape = spec.global_shape;
    e.global_offset = spec.global_offset;
    e.tp_replicated = spec.tp_replicated;
    e.tp_partial_grad = spec.tp_partial_grad;
  }
  return p;
}

Rwkv4Tensors bind_rwkv4_tensors(const ParameterStore& store, const Rwkv4Shape& s, const Rwkv4Partition& part_in) {
  const Rwkv4Partition part = part_in.layer_end == 0 ? Rwkv4Partition::whole(s) : part_in;
  const int64_t C = s.n_embd;
  auto vec = [&](const std::string& name) { return store.at(name).view({C}); };
  Rwkv4Tensors t;
  if (part.has_embedding()) t.emb = store.at("emb.weight");
  for (int64_t l = part.layer_begin; l < part.layer_end; ++l) {
    Rwkv4BlockTensors b;
    if (l == 0) {
      b.ln0_weight = store.at(block_name(l, "ln0.weight"));
      b.ln0_bias = store.at(block_name(l, "ln0.bias"));
    }
    b.ln1_weight = store.at(block_name(l, "ln1.weight"));
    b.ln1_bias = store.at(block_name(l, "ln1.bias"));
    b.ln2_weight = store.at(block_name(l, "ln2.weight"));
    b.ln2_bias = store.at(block_name(l, "ln2.bias"));
    b.att_time_decay = store.at(block_name(l, "att.time_decay"));
    b.att_time_first = store.at(block_name(l, "att.time_first"));
    b.att_mix_k = vec(block_name(l, "att.time_mix_k"));
    b.att_mix_v = vec(block_name(l, "att.time_mix_v"));
    b.att_mix_r = vec(block_name(l, "att.time_mix_r"));
    b.att_key = store.at(block_name(l, "att.key.weight"));
    b.att_value = store.at(block_name(l, "att.value.weight"));
    b.att_receptance = store.at(block_name(l, "att.receptance.weight"));
    b.att_output = store.at(block_name(l, "att.output.weight"));
    b.ffn_mix_k = vec(block_name(l, "ffn.time_mix_k"));
    b.ffn_mix_r = vec(block_name(l, "ffn.time_mix_r"));
    b.ffn_key = store.at(block_name(l, "ffn.key.weight"));
    b.ffn_receptance = store.at(block_name(l, "ffn.receptance.weight"));
    b.ffn_value = store.at(block_name(l, "ffn.value.weight"));
    t.blocks.push_back(b);
  }
  if (part.has_head(s)) {
    t.ln_out_weight = store.at("ln_out.weight");
    t.ln_out_bias = store.at("ln_out.bias");
    t.head = store.at("head.weight");
  }
  return t;
}

void cut_partition_slice(const Tensor& global, const NamedTensor& local, Tensor& out) {
  RWKV_CHECK(global.shape() == local.global(), "'", local.name, "' is ", shape_str(global.shape()),
             " in the whole model, the slice expects ", shape_str(local.global()));
  const Shape off = local.offset();
  // The slice is cut where the whole tensor lives, then copied to out's device.
  Tensor slice = Tensor::zeros(local.value.shape(), local.value.dtype(), global.device());
  if (global.shape() == slice.shape()) {
    slice.copy_from(global);
  } else if (slice.ndim() == 2 && slice.dim(1) != global.dim(1)) {  // a block of columns
    copy_columns(global, off[1], slice);
  } else {  // a block of rows; vocabulary padding past the global rows stays zero
    const int64_t rows = std::min(slice.dim(0), global.dim(0) - off[0]);
    if (rows > 0) {
      Tensor part = slice.slice_rows(0, rows);
      part.copy_from(global.slice_rows(off[0], rows));
    }
  }
  out.copy_from(slice);
}

void copy_partition_slices(const ParameterStore& whole, ParameterStore& local) {
  for (NamedTensor& e : local.entries()) cut_partition_slice(whole.at(e.name), e, e.value);
}

namespace {

// The random draws of the init come in stretches of kDrawStretch values, each
// from its own stream seeded by (seed, tensor name, stretch): a tensor's
// values depend on the seed and its name alone. So a rank makes only the
// tensors it holds (a stream shared by the whole model would have to be
// drawn through every tensor before: at 14B up to 5.6e9 draws, minutes
// per rank), and the stretches fill in parallel with results that do not depend
// on the thread count.
constexpr int64_t kDrawStretch = int64_t{1} << 20;

std::mt19937_64 draw_stream(uint64_t seed, const std::string& tensor, int64_t stretch) {
  const uint64_t name_hash = XXH3_64bits_withSeed(tensor.data(), tensor.size(), seed);
  const auto at = static_cast<uint64_t>(stretch);
  auto lo = [](uint64_t x) { return static_cast<uint32_t>(x); };
  auto hi = [](uint64_t x) { return static_cast<uint32_t>(x >> 32); };
  std::seed_seq seq{lo(seed), hi(seed), lo(name_hash), hi(name_hash), lo(at), hi(at)};
  return std::mt19937_64(seq);
}

// out[i] <- draws of dist, stretch k of the tensor's streams filling
// [k kDrawStretch, (k+1) kDrawStretch) with a fresh copy of dist (so a
// normal's cached spare never crosses stretches).
template <class Distribution>
void fill_draws(std::vector<double>& out, uint64_t seed, const std::string& tensor, const Distribution& dist) {
  const auto n = static_cast<int64_t>(out.size());
  const int64_t stretches = (n + kDrawStretch - 1) / kDrawStretch;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < stretches; ++k) {
    std::mt19937_64 rng = draw_stream(seed, tensor, k);
    Distribution d = dist;
    const int64_t end = std::min(n, (k + 1) * kDrawStretch);
    for (int64_t i = k * kDrawStretch; i < end; ++i) out[static_cast<size_t>(i)] = d(rng);
  }
}

// Writes into t [rows, cols] a matrix with orthonormal rows or columns (the
// smaller count), times gain: the QR of a Gaussian matrix with Q's column signs
// fixed by R's diagonal, as torch.nn.init.orthogonal_ defines it.
void fill_orthogonal(Tensor& t, double gain, uint64_t seed, const std::string& tensor) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  const bool transposed = rows < cols;
  const int m = static_cast<int>(transposed ? cols : rows), n = static_cast<int>(transposed ? rows : cols);
  std::vector<double> a(static_cast<size_t>(m) * n);  // column-major [m, n], m >= n
  fill_draws(a, seed, tensor, std::normal_distribution<double>(0.0, 1.0));
  orthonormalise_columns(a, m, n);
  Tensor out = Tensor::empty({rows, cols}, DType::F64);
  double* o = out.data<double>();
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const double q = a[static_cast<size_t>(j) * m + i] * gain;
      if (transposed) {
        o[j * cols + i] = q;  // Q^T: rows of t are orthonormal
      } else {
        o[i * cols + j] = q;
      }
    }
  }
  std::vector<double>().swap(a);  // freed before the rounding copy: the peak is 16 rows cols bytes
  t.copy_from(out.to_dtype(t.dtype()));
}

void fill_values(Tensor& t, const std::vector<double>& values) {
  t.copy_from(Tensor::from_vector<double>(values, t.shape()).to_dtype(t.dtype()));
}

}  // namespace

namespace {

bool name_ends_with(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Which tensors draw from the random stream, and how: the one list both the
// init (init_reference_tensor) and the skip of tensors a rank does not hold
// (skip_random_draws) follow, so they cannot drift apart.
enum class RandomInit { None, Uniform, Orthogonal };

RandomInit random_init_of(const std::string& name) {
  if (name == "emb.weight") return RandomInit::Uniform;
  if (name == "head.weight" || name_ends_with(name, "att.value.weight") || name_ends_with(name, "ffn.key.weight"))
    return RandomInit::Orthogonal;
  return RandomInit::None;
}

// The reference rule for one whole (global) tensor t named `name`; the
// random ones (emb, head, att.value, ffn.key) draw from their own streams
// (draw_stream), so the order tensors are made in does not matter.
void init_reference_tensor(const std::string& name, Tensor& t, const Rwkv4Shape& s, double emb_range, uint64_t seed) {
  const int64_t C = s.n_embd, L = s.n_layer;
  auto ends_with = [&](const char* suffix) { return name_ends_with(name, suffix); };
  int64_t layer = 0;
  if (name.rfind("blocks.", 0) == 0) layer = std::stoll(name.substr(7, name.find('.', 7) - 7));
  // Per-layer curves of the reference: ratio_0_to_1 = l/(L-1), ratio_1_to_almost0 = 1 - l/L.
  const double r01 = L > 1 ? static_cast<double>(layer) / static_cast<double>(L - 1) : 0.0;
  const double r10 = 1.0 - static_cast<double>(layer) / static_cast<double>(L);
  const RandomInit random = random_init_of(name);
  // Values for fill_values; the orthogonal and zero matrices need none (a
  // [V, C] buffer here would hold 8 V C bytes idle through the head's QR).
  const bool zero_matrix = random == RandomInit::None && ends_with(".weight") && t.ndim() == 2;
  std::vector<double> v(random == RandomInit::Orthogonal || zero_matrix ? 0 : static_cast<size_t>(t.numel()));
  if (random == RandomInit::Uniform) {  // emb
    fill_draws(v, seed, name, std::uniform_real_distribution<double>(-emb_range, emb_range));
    fill_values(t, v);
  } else if (random == RandomInit::Orthogonal && name == "head.weight") {
    fill_orthogonal(t, 0.5 * std::sqrt(static_cast<double>(s.vocab_size) / static_cast<double>(C)), seed, name);
  } else if (random == RandomInit::Orthogonal) {  // att.value, ffn.key
    const double rows = static_cast<double>(t.dim(0)), cols = static_cast<double>(t.dim(1));
    fill_orthogonal(t, rows > cols ? std::sqrt(rows / cols) : 1.0, seed, name);
  } else if (ends_with(".weight") && t.ndim() == 2) {
    t.zero_();  // att.key/receptance/output, ffn.receptance/value start at zero
  } else if (ends_with("ln0.weight") || ends_with("ln1.weight") || ends_with("ln2.weight") || name == "ln_out.weight") {
    for (double& x : v) x = 1.0;
    fill_values(t, v);
  } else if (ends_with(".bias")) {
    t.zero_();
  } else {
    for (int64_t i = 0; i < C; ++i) {
      const double r = static_cast<double>(i) / static_cast<double>(C);
      double x = 0.0;
      if (ends_with("att.time_decay")) {
        x = -5.0 + 8.0 * std::pow(static_cast<double>(i) / static_cast<double>(C > 1 ? C - 1 : 1), 0.7 + 1.3 * r01);
      } else if (ends_with("att.time_first")) {
        x = std::log(0.3) + 0.5 * static_cast<double>((i + 1) % 3 - 1);
      } else if (ends_with("att.time_mix_k")) {
        x = std::pow(r, r10);
      } else if (ends_with("att.time_mix_v")) {
        x = std::pow(r, r10) + 0.3 * r01;
      } else if (ends_with("att.time_mix_r")) {
        x = std::pow(r, 0.5 * r10);
      } else if (ends_with("ffn.time_mix_k") || ends_with("ffn.time_mix_r")) {
        x = std::pow(r, r10);
      } else {
        RWKV_FAIL("init_rwkv4_reference: no rule for parameter '", name, "'");
      }
      v[static_cast<size_t>(i)] = x;
    }
    fill_values(t, v);
  }
}

}  // namespace

int64_t reference_init_draws(const std::string& name, const Shape& global_shape) {
  if (random_init_of(name) == RandomInit::None) return 0;
  int64_t n = 1;
  for (int64_t d : global_shape) n *= d;
  return n;
}

void init_rwkv4_reference(ParameterStore& params, const Rwkv4Shape& s, uint64_t seed, double emb_range) {
  // A tensor's init depends on the seed and its name alone, so each rank
  // makes just the tensors it holds: a whole one in place, a slice (tensor
  // parallel, padded vocabulary) by making the whole tensor in host memory
  // and cutting the slice from it. The peak is one global tensor (and the
  // orthogonal init's workspace), not the model: 14B would otherwise need
  // 57 GB of host memory per rank at start-up.
  std::map<std::string, Shape> global_shapes;
  for (const Rwkv4TensorSpec& spec : rwkv4_tensor_specs(s, Rwkv4Partition::whole(s)))
    global_shapes[spec.name] = spec.global_shape;
  for (NamedTensor& e : params.entries()) {
    auto spec = global_shapes.find(e.name);
    RWKV_CHECK(spec != global_shapes.end() && spec->second == e.global(), "init_rwkv4_reference: '", e.name,
               "' of global shape ", shape_str(e.global()), " is not a parameter of the RWKV-4 model L", s.n_layer,
               " C", s.n_embd, " V", s.vocab_size);
    if (e.value.shape() == e.global()) {
      init_reference_tensor(e.name, e.value, s, emb_range, seed);
      continue;
    }
    Tensor full = Tensor::zeros(e.global(), e.value.dtype(), Device::cpu());
    init_reference_tensor(e.name, full, s, emb_range, seed);
    cut_partition_slice(full, e, e.value);
  }
}

}  // namespace rwkv
