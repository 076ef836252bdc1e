// The key table: one line per key. Types are strict (a list is not a number,
// 1.5 is not an integer, yes is not a bool) because a config that silently
// means something else than it says costs a training run.
#include "trainer/config_fields.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace rwkv::trainer::detail {

// ---- context and messages ---------------------------------------------------

std::string ConfigContext::location(const std::string& path) const {
  auto it = where_.find(path);
  if (it != where_.end()) return it->second;
  const size_t dot = path.find('.');
  if (dot != std::string::npos) {
    it = where_.find(path.substr(0, dot));
    if (it != where_.end()) return it->second;
  }
  return origin_;
}

void ConfigContext::fail(const std::string& path, const std::string& problem, const std::string& hint) const {
  RWKV_FAIL(location(path), ": ", path, ": ", problem, "\n  ---> HINT: ", hint);
}

std::string mark_location(const std::string& origin, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return origin;
  return str_cat(origin, ":", mark.line + 1, ":", mark.column + 1);
}

std::string describe_value(const YAML::Node& node) {
  if (!node.IsDefined()) return "nothing";
  if (node.IsNull()) return "an empty value";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping (key: value pairs)";
  std::string text = node.Scalar();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return "'" + text + "'";
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Levenshtein distance; a candidate counts as a typo of `word` when at most
  // a third of its letters (and at least 2) differ.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    const size_t d = distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

// ---- scalar parsing -----------------------------------------------------------

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// [+-]digits[.digits][(e|E)[+-]digits]: the numbers YAML 1.2 and every other
// YAML reader agree on (no hex, no .inf/.nan, no thousands separators).
bool is_decimal(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < n && is_digit(s[i])) ++i, ++digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && is_digit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent_digits = 0;
    while (i < n && is_digit(s[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  return i == n;
}

std::optional<double> parse_double(std::string_view s) {
  if (!is_decimal(s)) return std::nullopt;
  if (s[0] == '+') s.remove_prefix(1);  // from_chars takes '-' but not '+'
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<int64_t> parse_int(std::string_view s) {
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) return value;
  // Whole numbers written as floats (tokens: 3.32e11) are integers too, as
  // long as a double holds them exactly.
  const std::optional<double> d = parse_double(s);
  if (d && *d == std::floor(*d) && std::fabs(*d) <= 9007199254740992.0) return static_cast<int64_t>(*d);
  return std::nullopt;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A field's reader gets the value node only when the key is present.
[[noreturn]] void type_error(const ConfigContext& ctx, const std::string& path, const std::string& expected,
                             const YAML::Node& node, const std::string& hint) {
  ctx.fail(path, str_cat("expected ", expected, ", got ", describe_value(node)), hint);
}

std::string readme_hint(const std::string& path) {
  return str_cat("configs/README.md describes `", path, "`");
}

enum class Need { Optional, Required };

constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

std::string integer_expectation(int64_t min, int64_t max) {
  std::string text = min == 1   ? "a positive integer"
                     : min == 0 ? "a non-negative integer"
                                : str_cat("an integer >= ", min);
  if (max != kNoMax) text += str_cat(" up to ", max);
  return text;
}

// The accessor is a generic lambda `[](auto& c) -> auto& { return c.x.y; }`,
// so the same one reads into a TrainConfig and dumps from a const one.
#define RWKV_MEMBER(member) [](auto& c) -> auto& { return c.member; }

template <class Get>
Field int_field(std::string section, std::string key, Get get, int64_t min, int64_t max = kNoMax,
                Need need = Need::Optional) {
  Field f{std::move(section), std::move(key), integer_expectation(min, max), need == Need::Required, {}, {}};
  const std::string path = f.path(), expected = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    const std::optional<int64_t> value = node.IsScalar() ? parse_int(node.Scalar()) : std::nullopt;
    if (!value) type_error(ctx, path, expected, node, "write a whole number, e.g. 8 (1e6 is fine when it is whole)");
    if (*value < min || *value > max) type_error(ctx, path, expected, node, readme_hint(path));
    get(c) = *value;
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> { return std::to_string(get(c)); };
  return f;
}

// A list of numbers, each read by parse (parse_int, parse_double) and
// accepted by ok, written back by format: [3, 5] or [0.7, 0.3]. Empty means
// "not set".
template <class Get, class Parse, class Ok, class Format>
Field number_list_field(std::string section, std::string key, Get get, Parse parse, Ok ok, Format format,
                        std::string expected, std::string example) {
  Field f{std::move(section), std::move(key), std::move(expected), false, {}, {}};
  const std::string path = f.path(), expectation = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    if (!node.IsSequence()) type_error(ctx, path, expectation, node, "write a list, e.g. " + example);
    std::remove_reference_t<decltype(get(c))> items;
    for (const YAML::Node& item : node) {
      const auto value = item.IsScalar() ? parse(item.Scalar()) : std::nullopt;
      if (!value || !ok(*value)) type_error(ctx, path, expectation, item, readme_hint(path));
      items.push_back(*value);
    }
    get(c) = std::move(items);
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> {
    std::string out = "[";
    for (const auto& item : get(c)) out += (out.size() > 1 ? ", " : "") + format(item);
    return out + "]";
  };
  return f;
}

// Whole numbers, each at least min: [3, 5].
template <class Get>
Field int_list_field(std::string section, std::string key, Get get, int64_t min, std::string expected) {
  return number_list_field(
      std::move(section), std::move(key), get, parse_int, [min](int64_t v) { return v >= min; },
      [](int64_t v) { return std::to_string(v); }, std::move(expected), "[3, 5]");
}

// Decimal numbers, each accepted by ok: [0.7, 0.3].
template <class Get, class Ok>
Field real_list_field(std::string section, std::string key, Get get, Ok ok, std::string expected) {
  return number_list_field(std::move(section), std::move(key), get, parse_double, ok, format_double,
                           std::move(expected), "[0.7, 0.3]");
}

template <class Get, class Ok>
Field real_field(std::string section, std::string key, Get get, Ok ok, std::string expected) {
  Field f{std::move(section), std::move(key), std::move(expected), false, {}, {}};
  const std::string path = f.path(), expectation = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    const std::optional<double> value = node.IsScalar() ? parse_double(node.Scalar()) : std::nullopt;
    if (!value) type_error(ctx, path, expectation, node, "write a decimal number, e.g. 0.0006 or 6e-4");
    if (!ok(*value)) type_error(ctx, path, expectation, node, readme_hint(path));
    get(c) = *value;
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> { return format_double(get(c)); };
  return f;
}

template <class Get>
Field bool_field(std::string section, std::string key, Get get) {
  Field f{std::move(section), std::move(key), "true or false", false, {}, {}};
  const std::string path = f.path(), expected = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    // Only true/false: YAML 1.1's yes/no/on/off read differently in different
    // tools, and 0/1 is too easy to mean as a count.
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    if (text == "true" || text == "True" || text == "TRUE") {
      get(c) = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      get(c) = false;
    } else {
      type_error(ctx, path, expected, node, "write true or false");
    }
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> { return get(c) ? "true" : "false"; };
  return f;
}

template <class Get>
Field string_field(std::string section, std::string key, Get get, bool nonempty) {
  Field f{std::move(section), std::move(key), nonempty ? "a non-empty string" : "a string", false, {}, {}};
  const std::string path = f.path(), expected = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    if (!node.IsScalar()) type_error(ctx, path, expected, node, "write one value; quote it if it has spaces or ': '");
    if (nonempty && node.Scalar().empty()) type_error(ctx, path, expected, node, readme_hint(path));
    get(c) = node.Scalar();
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> { return quote(get(c)); };
  return f;
}

// A list of strings: paths and globs by default (expected and `each` say otherwise).
template <class Get>
Field list_field(std::string section, std::string key, Get get, Need need,
                 std::string expected_text = "a list of paths, e.g. [data/a, data/b]",
                 std::string each = "each entry is one path or glob") {
  Field f{std::move(section), std::move(key), std::move(expected_text), need == Need::Required, {}, {}};
  const std::string path = f.path(), expected = f.expected;
  f.read = [=](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    std::vector<std::string> items;
    if (node.IsScalar()) {
      items.push_back(node.Scalar());  // one path needs no brackets
    } else if (node.IsSequence()) {
      for (const YAML::Node& item : node) {
        if (!item.IsScalar()) type_error(ctx, path, expected, item, each);
        items.push_back(item.Scalar());
      }
    } else {
      type_error(ctx, path, expected, node, "write [path1, path2] or one path");
    }
    for (const std::string& item : items) {
      if (item.empty()) ctx.fail(path, "an entry is an empty string", "remove it, or write the path");
    }
    if (need == Need::Required && items.empty()) {
      ctx.fail(path, "the list is empty; expected at least one path",
               "name the binidx prefix of at least one shard (the path without .bin/.idx)");
    }
    get(c) = std::move(items);
  };
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> {
    std::string out = "[";
    for (const std::string& item : get(c)) out += (out.size() > 1 ? ", " : "") + quote(item);
    return out + "]";
  };
  return f;
}

template <class E>
using EnumNames = std::vector<std::pair<E, std::string>>;

// The spellings of parse_lr_decay (trainer/lr_schedule.cpp).
const EnumNames<LrDecay>& lr_schedule_names() {
  static const EnumNames<LrDecay> names = {
      {LrDecay::Exponential, "exponential"},
      {LrDecay::Cosine, "cosine"},
      {LrDecay::Linear, "linear"},
      {LrDecay::Constant, "constant"},
      {LrDecay::Wsd, "wsd"}};
  return names;
}
const EnumNames<SamplerKind>& sampler_names() {
  static const EnumNames<SamplerKind> names = {{SamplerKind::MagicPrime, "magic_prime"},
                                               {SamplerKind::Sequential, "sequential"}};
  return names;
}
const EnumNames<PipelineSchedule>& pipeline_names() {
  static const EnumNames<PipelineSchedule> names = {{PipelineSchedule::GPipe, "gpipe"},
                                                    {PipelineSchedule::OneFOneB, "1f1b"}};
  return names;
}
const EnumNames<DeviceKind>& device_names() {
  static const EnumNames<DeviceKind> names = {{DeviceKind::Cpu, "cpu"}, {DeviceKind::Cuda, "cuda"}};
  return names;
}
// The spellings of precision_name (trainer/precision.h).
const EnumNames<Precision>& precision_names() {
  static const EnumNames<Precision> names = {{Precision::FP32, "fp32"}, {Precision::BF16, "bf16"}};
  return names;
}

template <class E>
const char* enum_name(const EnumNames<E>& names, E value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name.c_str();
  }
  return "?";
}

// `aliases` maps words people use for a value to its name (gpu -> cuda), so
// the hint does not offer the nearest spelling (cpu) instead.
template <class E, class Get>
Field enum_field(std::string section, std::string key, Get get, const EnumNames<E>& names,
                 std::map<std::string, std::string> aliases = {}) {
  std::vector<std::string> words;
  for (const auto& [value, name] : names) words.push_back(name);
  std::string expected = "one of ";
  for (size_t i = 0; i < words.size(); ++i) expected += (i ? ", " : "") + words[i];
  Field f{std::move(section), std::move(key), expected, false, {}, {}};
  const std::string path = f.path();
  f.read = [=, &names](const YAML::Node& node, TrainConfig& c, const ConfigContext& ctx) {
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    for (const auto& [value, name] : names) {
      if (text == name) {
        get(c) = value;
        return;
      }
    }
    const auto alias = aliases.find(text);
    const std::string guess = !node.IsScalar()           ? ""
                              : alias != aliases.end() ? alias->second
                                                       : closest_match(text, words);
    type_error(ctx, path, expected, node,
               guess.empty() ? readme_hint(path) : str_cat("did you mean '", guess, "'?"));
  };
  f.dump = [=, &names](const TrainConfig& c) -> std::optional<std::string> { return enum_name(names, get(c)); };
  return f;
}

// Steps and tokens: 0 in the struct means "not given", which has no YAML
// spelling, so the dump leaves the key out.
template <class Get>
Field count_field(std::string section, std::string key, Get get) {
  Field f = int_field(std::move(section), std::move(key), get, 1);
  f.dump = [=](const TrainConfig& c) -> std::optional<std::string> {
    if (get(c) == 0) return std::nullopt;
    return std::to_string(get(c));
  };
  return f;
}

std::vector<Field> make_fields() {
  const auto positive = [](double v) { return v > 0; };
  const auto finite_positive = [](double v) { return std::isfinite(v) && v > 0; };
  const auto non_negative = [](double v) { return v >= 0; };
  const auto unit_interval = [](double v) { return v >= 0 && v < 1; };
  return {
      enum_field("", "device", RWKV_MEMBER(device), device_names(), {{"gpu", "cuda"}, {"GPU", "cuda"}}),

      // Upper limits keep parameter_count and buffer sizes far from int64
      // overflow; vocab ids are int32 in the data pipeline.
      int_field("model", "n_layer", RWKV_MEMBER(model.n_layer), 1, 1 << 16, Need::Required),
      int_field("model", "n_embd", RWKV_MEMBER(model.n_embd), 1, 1 << 20, Need::Required),
      int_field("model", "vocab_size", RWKV_MEMBER(model.vocab_size), 1, std::numeric_limits<int32_t>::max(),
                Need::Required),
      int_field("model", "ctx_len", RWKV_MEMBER(model.ctx_len), 1, std::numeric_limits<int32_t>::max() - 1,
                Need::Required),
      int_field("model", "dim_ffn", RWKV_MEMBER(model.dim_ffn), 0, 1 << 24),

      list_field("data", "train", RWKV_MEMBER(data.train), Need::Required),
      real_list_field("data", "train_weights", RWKV_MEMBER(data.train_weights), finite_positive,
                      "a list of numbers > 0, one per data.train entry, e.g. [0.7, 0.3]; [] = one stream"),
      list_field("data", "valid", RWKV_MEMBER(data.valid), Need::Optional),
      string_field("data", "tokenizer", RWKV_MEMBER(data.tokenizer), true),
      enum_field("data", "sampler", RWKV_MEMBER(data.sampler), sampler_names()),
      int_field("data", "magic_prime", RWKV_MEMBER(data.magic_prime), 0),

      int_field("train", "micro_batch", RWKV_MEMBER(train.micro_batch), 1),
      int_field("train", "grad_accum", RWKV_MEMBER(train.grad_accum), 1),
      count_field("train", "steps", RWKV_MEMBER(train.steps)),
      count_field("train", "tokens", RWKV_MEMBER(train.tokens)),
      real_field("train", "lr_init", RWKV_MEMBER(train.lr_init), positive, "a number > 0"),
      real_field("train", "lr_final", RWKV_MEMBER(train.lr_final), non_negative, "a number >= 0"),
      int_field("train", "warmup_steps", RWKV_MEMBER(train.warmup_steps), 0),
      enum_field("train", "lr_schedule", RWKV_MEMBER(train.lr_schedule), lr_schedule_names(),
                 {{"exp", "exponential"}, {"cos", "cosine"}}),
      real_field("train", "cooldown_fraction", RWKV_MEMBER(train.cooldown_fraction),
                 [](double v) { return v > 0 && v <= 1; }, "a number in (0, 1]"),
      real_field("train", "beta1", RWKV_MEMBER(train.beta1), unit_interval, "a number in [0, 1)"),
      real_field("train", "beta2", RWKV_MEMBER(train.beta2), unit_interval, "a number in [0, 1)"),
      real_field("train", "adam_eps", RWKV_MEMBER(train.adam_eps), positive, "a number > 0"),
      real_field("train", "weight_decay", RWKV_MEMBER(train.weight_decay), non_negative, "a number >= 0"),
      real_field("train", "grad_clip", RWKV_MEMBER(train.grad_clip), non_negative, "a number >= 0 (0 = off)"),
      int_field("train", "seed", RWKV_MEMBER(train.seed), 0),
      int_field("train", "eval_interval", RWKV_MEMBER(train.eval_interval), 0),
      int_field("train", "eval_batches", RWKV_MEMBER(train.eval_batches), 1),
      int_field("train", "log_interval", RWKV_MEMBER(train.log_interval), 1),
      bool_field("train", "l2wrap", RWKV_MEMBER(train.l2wrap)),
      bool_field("train", "layerwise_lr", RWKV_MEMBER(train.layerwise_lr)),
      bool_field("train", "recompute", RWKV_MEMBER(train.recompute)),
      list_field("train", "freeze", RWKV_MEMBER(train.freeze), Need::Optional,
                 "a list of parameter names or globs, e.g. [emb.weight, \"blocks.0.*\"]",
                 "each entry is one reference name or glob"),
      real_field("train", "dropout", RWKV_MEMBER(train.dropout), [](double v) { return v >= 0 && v < 1; },
                 "a number in [0, 1)"),
      // Aliases only steer the hint: fp16 is not bf16 (no loss scaling here),
      // but it is what someone asking for half precision most likely wants.
      enum_field("train", "precision", RWKV_MEMBER(train.precision), precision_names(),
                 {{"f32", "fp32"}, {"float32", "fp32"}, {"float", "fp32"}, {"bfloat16", "bf16"}, {"fp16", "bf16"},
                  {"f16", "bf16"}, {"half", "bf16"}, {"mixed", "bf16"}, {"bf16-mixed", "bf16"}}),
      int_field("train", "threads", RWKV_MEMBER(train.threads), 0, 1 << 16),
      real_field("train", "peak_gflops", RWKV_MEMBER(train.peak_gflops), non_negative, "a number >= 0 (0 = measure)"),

      int_field("parallel", "dp", RWKV_MEMBER(parallel.dp), 1, 1 << 20),
      int_field("parallel", "tp", RWKV_MEMBER(parallel.tp), 1, 1 << 20),
      int_field("parallel", "pp", RWKV_MEMBER(parallel.pp), 1, 1 << 20),
      enum_field("parallel", "schedule", RWKV_MEMBER(parallel.schedule), pipeline_names()),
      bool_field("parallel", "zero", RWKV_MEMBER(parallel.zero)),
      bool_field("parallel", "overlap_grad_reduce", RWKV_MEMBER(parallel.overlap_grad_reduce)),
      real_field("parallel", "bucket_mib", RWKV_MEMBER(parallel.bucket_mib), positive, "a number of MiB > 0, e.g. 25"),
      enum_field("parallel", "grad_reduce_dtype", RWKV_MEMBER(parallel.grad_reduce_dtype), precision_names(),
                 {{"f32", "fp32"}, {"float32", "fp32"}, {"bfloat16", "bf16"}, {"fp16", "bf16"}, {"half", "bf16"}}),
      int_field("parallel", "vocab_pad_multiple", RWKV_MEMBER(parallel.vocab_pad_multiple), 1, 1 << 20),
      int_list_field("parallel", "stage_layers", RWKV_MEMBER(parallel.stage_layers), 1,
                     "a list of pp block counts summing to n_layer, e.g. [3, 5]; [] = even split"),

      string_field("checkpoint", "dir", RWKV_MEMBER(checkpoint.dir), true),
      int_field("checkpoint", "interval", RWKV_MEMBER(checkpoint.interval), 0),
      real_field("checkpoint", "interval_minutes", RWKV_MEMBER(checkpoint.interval_minutes), non_negative,
                 "a number >= 0"),
      int_field("checkpoint", "keep_last", RWKV_MEMBER(checkpoint.keep_last), 0),
      int_field("checkpoint", "keep_every", RWKV_MEMBER(checkpoint.keep_every), 0),
      bool_field("checkpoint", "async", RWKV_MEMBER(checkpoint.async)),
      string_field("checkpoint", "resume", RWKV_MEMBER(checkpoint.resume), true),

      bool_field("controller", "enabled", RWKV_MEMBER(controller.enabled)),
      string_field("controller", "address", RWKV_MEMBER(controller.address), false),
      string_field("controller", "token_file", RWKV_MEMBER(controller.token_file), false),
      real_field("controller", "heartbeat_s", RWKV_MEMBER(controller.heartbeat_s), positive, "a number > 0"),
      real_field("controller", "heartbeat_timeout_s", RWKV_MEMBER(controller.heartbeat_timeout_s), positive,
                 "a number > 0"),
  };
}

#undef RWKV_MEMBER

}  // namespace

const std::vector<Field>& config_fields() {
  static const std::vector<Field> fields = make_fields();
  return fields;
}

const std::vector<std::string>& config_sections() {
  static const std::vector<std::string> sections = {"model", "data", "train", "parallel", "checkpoint", "controller"};
  return sections;
}

std::string format_double(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest round trip
  std::string text(buffer, ec == std::errc() ? end : buffer);
  // YAML 1.1 readers (PyYAML) take a float only with a '.', and an exponent
  // only with a sign: 6e-05 -> 6.0e-05, 1 -> 1.0, 1e+20 stays signed.
  const size_t e = text.find('e');
  if (text.find('.') == std::string::npos) text.insert(e == std::string::npos ? text.size() : e, ".0");
  return text;
}

}  // namespace rwkv::trainer::detail

namespace rwkv::trainer {

const char* to_string(LrDecay value) { return detail::enum_name(detail::lr_schedule_names(), value); }
const char* to_string(SamplerKind value) { return detail::enum_name(detail::sampler_names(), value); }
const char* to_string(PipelineSchedule value) { return detail::enum_name(detail::pipeline_names(), value); }
const char* to_string(DeviceKind value) { return detail::enum_name(detail::device_names(), value); }
const char* to_string(Precision value) { return detail::enum_name(detail::precision_names(), value); }

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const detail::Field& f : detail::config_fields()) keys.push_back(f.path());
  return keys;
}

}  // namespace rwkv::trainer
