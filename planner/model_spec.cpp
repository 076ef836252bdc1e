#include "planner/model_spec.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "trainer/config.h"

namespace rwkv::planner {

namespace {

struct PileShape {
  const char* name;
  const char* aliases[3];
  int64_t n_layer, n_embd;
};

// RWKV-4-Pile (configs/rwkv4-*.yaml, DESIGN.md section 4).
constexpr PileShape kPile[] = {
    {"169M", {"169m", "rwkv4-169m", nullptr}, 12, 768},  {"430M", {"430m", "rwkv4-430m", nullptr}, 24, 1024},
    {"1.5B", {"1b5", "rwkv4-1b5", "1.5b"}, 24, 2048},    {"3B", {"3b", "rwkv4-3b", nullptr}, 32, 2560},
    {"7B", {"7b", "rwkv4-7b", nullptr}, 32, 4096},       {"14B", {"14b", "rwkv4-14b", nullptr}, 40, 5120},
};
constexpr int64_t kPileVocab = 50277;       // GPT-NeoX-20B tokenizer
constexpr int64_t kPileCtx = 1024;
constexpr int64_t kConfigGlobalBatch = 128;  // micro_batch 8 x grad_accum 16 in configs/rwkv4-*.yaml

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const PileShape* find_pile(const std::string& name) {
  const std::string want = lower(name);
  for (const PileShape& p : kPile) {
    if (lower(p.name) == want) return &p;
    for (const char* a : p.aliases)
      if (a && want == a) return &p;
  }
  return nullptr;
}

std::string names_list() {
  std::string out;
  for (const PileShape& p : kPile) out += str_cat(out.empty() ? "" : ", ", p.name);
  return out;
}

}  // namespace

std::vector<std::string> pile_model_names() {
  std::vector<std::string> out;
  for (const PileShape& p : kPile) out.emplace_back(p.name);
  return out;
}

ModelSpec pile_model(const std::string& name) {
  const PileShape* p = find_pile(name);
  RWKV_CHECK(p != nullptr, "--model: '", name, "' is neither an RWKV-4-Pile name nor a config file",
             "\n  ---> HINT: use one of ", names_list(), ", or a config such as configs/rwkv4-14b.yaml");
  return {p->name, p->n_layer, p->n_embd, 4 * p->n_embd, kPileVocab, kPileCtx, kConfigGlobalBatch};
}

ModelSpec model_from_config(const std::string& path, const std::vector<std::string>& overrides) {
  const trainer::TrainConfig c = trainer::load_config(path, overrides);
  return {path, c.model.n_layer, c.model.n_embd, c.model.dim_ffn, c.model.vocab_size, c.model.ctx_len,
          trainer::global_batch(c)};
}

ModelSpec resolve_model(const std::string& name_or_path) {
  if (find_pile(name_or_path)) return pile_model(name_or_path);
  if (std::filesystem::exists(name_or_path)) return model_from_config(name_or_path);
  return pile_model(name_or_path);  // throws with the list of names
}

int64_t block_parameters(const ModelSpec& m, int64_t tp) {
  const int64_t C = m.n_embd, F = m.dim_ffn, Cl = C / tp, Fl = F / tp;
  const int64_t att = 3 * Cl * C + C * Cl + 2 * Cl + 3 * C;  // key/value/receptance, output, decay/first, mixes
  const int64_t ffn = Fl * C + Cl * C + C * Fl + 2 * C;       // key, receptance, value, mixes
  const int64_t norms = 4 * C;                                // ln1, ln2
  return att + ffn + norms;
}

int64_t local_parameters(const ModelSpec& m, const Rwkv4Partition& part) {
  const int64_t C = m.n_embd;
  int64_t n = (part.layer_end - part.layer_begin) * block_parameters(m, part.tp_size);
  if (part.has_embedding()) n += part.local_vocab() * C + 2 * C;  // emb, ln0 (block 0)
  if (part.has_head(m.shape())) n += part.local_vocab() * C + 2 * C;  // head, ln_out
  return n;
}

int64_t total_parameters(const ModelSpec& m) { return local_parameters(m, Rwkv4Partition::whole(m.shape())); }

int64_t closed_form_parameters(const ModelSpec& m) {
  const int64_t C = m.n_embd, V = m.vocab_size, L = m.n_layer;
  return 2 * V * C + L * (13 * C * C + 11 * C) + 4 * C;
}

double model_flops_per_token(const ModelSpec& m) {
  const double C = static_cast<double>(m.n_embd), F = static_cast<double>(m.dim_ffn);
  return 6.0 * (static_cast<double>(m.n_layer) * (5.0 * C * C + 2.0 * C * F) + static_cast<double>(m.vocab_size) * C);
}

}  // namespace rwkv::planner
