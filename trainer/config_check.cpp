// Checks across keys: each key already has the right type and range (the key
// table saw to that); here go the rules that tie keys together. Each failure
// names the key to change, the values that clash and a way out.
#include <numeric>

#include "core/error.h"
#include "trainer/config_fields.h"

namespace rwkv::trainer::detail {

namespace {

__extension__ typedef unsigned __int128 uint128;  // __extension__: -Wpedantic knows no 128-bit type

// Deterministic Miller-Rabin for 64-bit n (these bases suffice below 3.3e24).
// The data pipeline has its own is_prime; the config library stays free of it
// so that it builds without the data component.
bool is_prime_u64(uint64_t n) {
  if (n < 2) return false;
  for (const uint64_t p : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    if (n % p == 0) return n == p;
  }
  auto mul_mod = [n](uint64_t a, uint64_t b) { return static_cast<uint64_t>(static_cast<uint128>(a) * b % n); };
  auto pow_mod = [&](uint64_t base, uint64_t exponent) {
    uint64_t result = 1;
    for (; exponent; exponent >>= 1, base = mul_mod(base, base)) {
      if (exponent & 1) result = mul_mod(result, base);
    }
    return result;
  };
  uint64_t d = n - 1;
  int r = 0;
  for (; d % 2 == 0; d /= 2) ++r;
  for (const uint64_t a : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    uint64_t x = pow_mod(a, d);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < r && composite; ++i) {
      x = mul_mod(x, x);
      if (x == n - 1) composite = false;
    }
    if (composite) return false;
  }
  return true;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The largest divisor of n that is <= limit: a tp that would work.
int64_t largest_divisor_at_most(int64_t n, int64_t limit) {
  for (int64_t d = std::min(n, limit); d > 1; --d) {
    if (n % d == 0) return d;
  }
  return 1;
}

void check_train_length(const TrainConfig& c, const ConfigContext& ctx) {
  const TrainSection& t = c.train;
  if (t.steps > 0 && t.tokens > 0) {
    ctx.fail("train.tokens", "train.steps and train.tokens are both set; expected exactly one",
             "keep one: steps counts optimizer steps, tokens is rounded up to whole steps "
             "(--set train.steps= removes steps from the file)");
  }
  if (t.steps == 0 && t.tokens == 0) {
    ctx.fail("train.steps", "missing; expected exactly one of train.steps and train.tokens",
             "add 'steps: 1000' (or 'tokens: 1e9') under 'train:'");
  }
  int64_t product = 1;
  for (const int64_t factor : {t.micro_batch, t.grad_accum, c.parallel.dp, c.model.ctx_len}) {
    if (__builtin_mul_overflow(product, factor, &product)) {
      ctx.fail("train.micro_batch",
               str_cat("micro_batch (", t.micro_batch, ") x grad_accum (", t.grad_accum, ") x parallel.dp (",
                       c.parallel.dp, ") x model.ctx_len (", c.model.ctx_len, ") tokens per step overflow 64 bits"),
               "these are far beyond any real run; check for a typo");
    }
  }
  const int64_t total = total_steps(c);
  if (t.warmup_steps > total) {
    ctx.fail("train.warmup_steps",
             str_cat("expected at most the run's ", total, " steps", t.tokens > 0 ? " (from train.tokens)" : "",
                     ", got ", t.warmup_steps),
             "shorten the warmup or lengthen the run");
  }
}

void check_schedule(const TrainConfig& c, const ConfigContext& ctx) {
  const TrainSection& t = c.train;
  // (lr_final 0 with exponential is allowed: the schedule then decays
  // linearly, as the reference does; configs/README.md says so.)
  if (t.lr_schedule != LrDecay::Wsd && t.cooldown_fraction != TrainSection{}.cooldown_fraction) {
    ctx.fail("train.cooldown_fraction",
             str_cat("is ", t.cooldown_fraction, " but train.lr_schedule ", to_string(t.lr_schedule),
                     " has no cooldown; only wsd uses it"),
             "remove cooldown_fraction, or set lr_schedule: wsd");
  }
  if (t.eval_interval > 0 && c.data.valid.empty()) {
    ctx.fail("train.eval_interval", str_cat("is ", t.eval_interval, " but data.valid names no shards to evaluate on"),
             "add 'valid: [path/to/valid_shard]' under 'data:', or set eval_interval: 0");
  }
}

void check_data(const TrainConfig& c, const ConfigContext& ctx) {
  const DataConfig& d = c.data;
  // The same spellings data/tokenizer.cpp's load_tokenizer accepts; the file
  // itself is opened by the data pipeline, which names it if it is missing.
  const std::string& spec = d.tokenizer;
  const bool known = spec == "bytes" || (starts_with(spec, "hf:") && spec.size() > 3) ||
                     (starts_with(spec, "world:") && spec.size() > 6) || ends_with(spec, ".json") ||
                     ends_with(spec, ".txt");
  if (!known) {
    ctx.fail("data.tokenizer",
             str_cat("expected bytes, hf:PATH, world:PATH, or a PATH ending in .json (Hugging Face) or .txt "
                     "(RWKV World), got '", spec, "'"),
             "e.g. tokenizer: data/vocab/20B_tokenizer.json (GPT-NeoX, the Pile models) or tokenizer: bytes");
  }
  if (spec == "bytes" && c.model.vocab_size < 257) {
    ctx.fail("model.vocab_size",
             str_cat("expected at least 257 for the bytes tokenizer (id 0 ends a document, ids 1-256 are the bytes), "
                     "got ", c.model.vocab_size),
             "set vocab_size: 257");
  }
  if (!d.train_weights.empty() && d.train_weights.size() != d.train.size()) {
    ctx.fail("data.train_weights",
             str_cat("has ", d.train_weights.size(), " weight(s) but data.train has ", d.train.size(),
                     " entr", d.train.size() == 1 ? "y" : "ies", "; expected one weight per entry"),
             "give each data.train entry (a path or glob) its weight, in the same order, or remove train_weights "
             "to read the entries as one stream");
  }
  if (!d.train_weights.empty() && d.magic_prime != 0) {
    ctx.fail("data.magic_prime",
             str_cat("is ", d.magic_prime, " but with data.train_weights each dataset of the mixture takes the "
                     "largest magic prime of its own"),
             "remove magic_prime (or set it to 0)");
  }
  if (d.sampler == SamplerKind::Sequential && d.magic_prime != 0) {
    ctx.fail("data.magic_prime", str_cat("is ", d.magic_prime, " but data.sampler sequential does not use it"),
             "remove magic_prime, or use sampler: magic_prime");
  }
  if (d.magic_prime != 0) {
    const auto p = static_cast<uint64_t>(d.magic_prime);
    if (!is_prime_u64(p) || p % 3 != 2) {
      ctx.fail("data.magic_prime",
               str_cat("expected a prime p with p mod 3 = 2 (so that x -> x^3 permutes the chunks), got ", p,
                       is_prime_u64(p) ? " (a prime, but p mod 3 = 1)" : " (not a prime)"),
               "use 0 to compute it from the data, or `rwkv-data magic-prime --tokens N --ctx-len T`");
    }
  }
}

void check_parallel(const TrainConfig& c, const ConfigContext& ctx) {
  const ModelConfig& m = c.model;
  const ParallelConfig& p = c.parallel;
  // Tensor parallelism splits channels (time mix, channel mix) and vocabulary
  // rows (embedding, head) evenly over the tp ranks.
  if (m.n_embd % p.tp != 0) {
    ctx.fail("parallel.tp",
             str_cat("model.n_embd (", m.n_embd, ") is not divisible by parallel.tp (", p.tp,
                     "); tensor parallelism splits the channels evenly"),
             str_cat("use a tp that divides n_embd, e.g. tp: ", largest_divisor_at_most(m.n_embd, p.tp)));
  }
  if (m.dim_ffn % p.tp != 0) {
    ctx.fail("parallel.tp",
             str_cat("model.dim_ffn (", m.dim_ffn, ") is not divisible by parallel.tp (", p.tp,
                     "); tensor parallelism splits the channel-mix hidden units evenly"),
             str_cat("use a tp that divides dim_ffn, e.g. tp: ", largest_divisor_at_most(m.dim_ffn, p.tp)));
  }
  // The vocabulary is padded to a multiple of lcm(tp, vocab_pad_multiple)
  // automatically (trainer/rwkv4_partition.h), so any tp works with any V.
  if (p.pp > m.n_layer) {
    ctx.fail("parallel.pp",
             str_cat("expected at most model.n_layer (", m.n_layer, ") pipeline stages, got ", p.pp),
             "every stage needs at least one block; lower pp");
  }
  if (!p.stage_layers.empty()) {
    int64_t sum = 0;
    for (int64_t n : p.stage_layers) sum += n;
    if (static_cast<int64_t>(p.stage_layers.size()) != p.pp || sum != m.n_layer) {
      ctx.fail("parallel.stage_layers",
               str_cat("expected pp (", p.pp, ") block counts summing to model.n_layer (", m.n_layer, "), got ",
                       p.stage_layers.size(), " counts summing to ", sum),
               "e.g. stage_layers: [3, 5] for pp: 2 and n_layer: 8, or [] for an even split");
    }
  }
}

// bf16 storage exists only in the CUDA kernels (kernels/dispatch.cpp).
void check_precision(const TrainConfig& c, const ConfigContext& ctx) {
  if (c.train.precision == Precision::BF16 && c.device != DeviceKind::Cuda) {
    ctx.fail("train.precision",
             "is bf16 but device is cpu; expected fp32 on the CPU (bf16 mixed precision runs on the CUDA backend only)",
             "set device: cuda to train in bf16 on a GPU, or precision: fp32");
  }
}

void check_checkpoint(const TrainConfig& c, const ConfigContext& ctx) {
  const CheckpointConfig& k = c.checkpoint;
  if (k.keep_every > 0 && k.interval == 0) {
    ctx.fail("checkpoint.keep_every",
             str_cat("is ", k.keep_every, " but checkpoint.interval is 0 (a checkpoint only at the end)"),
             "set interval to a divisor of keep_every, or keep_every: 0");
  }
  if (k.keep_every > 0 && k.keep_every % k.interval != 0) {
    ctx.fail("checkpoint.keep_every",
             str_cat("expected a multiple of checkpoint.interval (", k.interval, "), got ", k.keep_every),
             str_cat("checkpoints exist only every ", k.interval, " steps; e.g. keep_every: ",
                     (k.keep_every / k.interval + 1) * k.interval));
  }
}

void check_controller(const TrainConfig& c, const ConfigContext& ctx) {
  const ControllerConfig& k = c.controller;
  if (k.enabled && k.address.empty()) {
    ctx.fail("controller.address", "missing; expected host:port when controller.enabled is true",
             "e.g. address: localhost:50051, or enabled: false");
  }
  if (!k.address.empty()) {
    const size_t colon = k.address.rfind(':');
    const std::string port = colon == std::string::npos ? "" : k.address.substr(colon + 1);
    bool ok = colon != std::string::npos && colon > 0 && !port.empty() && port.size() <= 5 &&
              port.find_first_not_of("0123456789") == std::string::npos;
    if (ok) ok = std::stoi(port) >= 1 && std::stoi(port) <= 65535;
    if (!ok) {
      ctx.fail("controller.address", str_cat("expected host:port with a port in 1-65535, got '", k.address, "'"),
               "e.g. address: localhost:50051 or address: \"[::1]:50051\"");
    }
  }
  if (k.heartbeat_timeout_s <= k.heartbeat_s) {
    ctx.fail("controller.heartbeat_timeout_s",
             str_cat("expected more than controller.heartbeat_s (", k.heartbeat_s, "), got ", k.heartbeat_timeout_s),
             "a rank counts as lost after this long without a heartbeat; allow several, e.g. 12 x heartbeat_s");
  }
}

}  // namespace

void check_config(const TrainConfig& config, const ConfigContext& ctx) {
  check_data(config, ctx);
  check_parallel(config, ctx);
  check_train_length(config, ctx);
  check_schedule(config, ctx);
  check_precision(config, ctx);
  check_checkpoint(config, ctx);
  check_controller(config, ctx);
}

}  // namespace rwkv::trainer::detail
