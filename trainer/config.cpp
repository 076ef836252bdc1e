// Loading a config: read the file, parse YAML, note where every key sits,
// apply --set overrides to the tree, reject unknown keys (with the closest
// known one), read each key through the table in config_fields.cpp, fill in
// derived defaults, then run the cross-key checks. Overrides go into the tree
// before any reading so that a value set on the command line is checked
// exactly like one written in the file.
#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "trainer/config_fields.h"

namespace rwkv::trainer {

namespace {

using detail::ConfigContext;
using detail::Field;

// RWKV-LM's train.py names for settings we spell differently, so that a
// reference user is pointed at ours instead of at a typo guess.
const std::map<std::string, std::string>& reference_names() {
  static const std::map<std::string, std::string> names = {
      {"micro_bsz", "train.micro_batch"},      {"accumulate_grad_batches", "train.grad_accum"},
      {"grad_cp", "train.recompute"},          {"random_seed", "train.seed"},
      {"gradient_clip_val", "train.grad_clip"}, {"my_exit_tokens", "train.tokens"},
      {"data_file", "data.train"},             {"proj_dir", "checkpoint.dir"},
      {"load_model", "checkpoint.resume"},     {"devices", "parallel.dp"},
  };
  return names;
}

const Field* find_field(const std::string& section, const std::string& key) {
  for (const Field& f : detail::config_fields()) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

bool is_section(const std::string& name) {
  for (const std::string& s : detail::config_sections()) {
    if (s == name) return true;
  }
  return false;
}

std::vector<std::string> keys_of(const std::string& section) {
  std::vector<std::string> keys;
  for (const Field& f : detail::config_fields()) {
    if (f.section == section) keys.push_back(f.key);
  }
  return keys;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// The hint for an unknown key `key` met in `section` ("" = top level).
std::string unknown_key_hint(const std::string& section, const std::string& key) {
  // "n_embd 32" is a key without its colon: YAML reads the line as one key.
  const size_t space = key.find(' ');
  if (space != std::string::npos) {
    return str_cat("a ':' is missing: write '", key.substr(0, space), ": ", key.substr(space + 1), "'");
  }
  const auto alias = reference_names().find(key);
  if (alias != reference_names().end()) {
    return str_cat("did you mean '", alias->second, "'? (RWKV-LM's --", key, ")");
  }
  if (key == "head_qk" || key == "pre_ffn" || key == "tiny_att_dim") {
    return str_cat("RWKV-LM's ", key, " trick is not part of the RWKV-4 Pile models and is not implemented; remove it");
  }
  for (const Field& f : detail::config_fields()) {
    if (f.key == key && f.section != section) {
      return f.section.empty() ? str_cat("'", key, "' is a top-level key: move it out of '", section, ":'")
                               : str_cat("'", key, "' belongs in section '", f.section, "': move it under '",
                                         f.section, ":'");
    }
  }
  std::vector<std::string> candidates = keys_of(section);
  if (section.empty()) candidates.insert(candidates.end(), detail::config_sections().begin(),
                                         detail::config_sections().end());
  const std::string guess = detail::closest_match(key, candidates);
  if (!guess.empty()) return str_cat("did you mean '", guess, "'?");
  return section.empty() ? str_cat("the top level holds the sections ", join(detail::config_sections()),
                                   " and the keys ", join(keys_of("")))
                         : str_cat("the keys of '", section, "' are ", join(candidates));
}

// Records the location of every key and rejects keys written twice (yaml-cpp
// would silently keep the first).
void index_locations(const YAML::Node& map, const std::string& prefix, ConfigContext& ctx) {
  std::map<std::string, std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string where = detail::mark_location(ctx.origin(), it->first);
    if (!it->first.IsScalar()) RWKV_FAIL(where, ": a key must be a plain name, got ", detail::describe_value(it->first),
                                         "\n  ---> HINT: write `name: value`");
    const std::string path = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
    if (seen.count(path)) {
      RWKV_FAIL(where, ": ", path, ": written twice (first at ", seen[path],
                ")\n  ---> HINT: keep one; YAML does not allow a key twice in one mapping");
    }
    seen[path] = where;
    ctx.set_location(path, where);
    if (prefix.empty() && it->second.IsMap()) index_locations(it->second, path, ctx);
  }
}

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Applies one "section.key=value" to the tree. An empty value (or ~, null)
// removes the key, so that its default applies again: the only way to drop,
// say, train.steps from a file in order to give train.tokens instead.
void apply_override(YAML::Node& root, const std::string& text, ConfigContext& ctx) {
  const std::string where = str_cat(ctx.origin(), " (--set ", text, ")");
  auto fail = [&](const std::string& problem, const std::string& hint) {
    RWKV_FAIL(where, ": ", problem, "\n  ---> HINT: ", hint);
  };
  const size_t eq = text.find('=');
  if (eq == std::string::npos) fail("expected section.key=value", "e.g. --set train.lr_init=3e-4");
  const std::string path = trim(text.substr(0, eq));
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const std::string& part : parts) {
    if (part.empty() || parts.size() > 2) {
      fail(str_cat("'", path, "' is not a key; expected section.key or a top-level key"),
           "e.g. --set train.micro_batch=4 or --set device=cuda");
    }
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    fail(str_cat("the value is not valid YAML: ", e.msg), "quote it, e.g. --set 'data.tokenizer=\"hf:a b.json\"'");
  }
  const bool remove = value.IsNull();
  if (parts.size() == 1) {
    if (is_section(path)) {
      fail(str_cat("'", path, "' is a section, not a key"),
           str_cat("set one key at a time, e.g. --set ", path, ".", keys_of(path).front(), "=..."));
    }
    if (remove) {
      root.remove(path);
      ctx.forget(path);
    } else {
      root[path] = value;
      ctx.set_location(path, where);
    }
    return;
  }
  YAML::Node section = root[parts[0]];
  if (section.IsDefined() && !section.IsNull() && !section.IsMap()) {
    fail(str_cat("'", parts[0], "' in the file is ", detail::describe_value(section), ", not a section of keys"),
         str_cat("fix '", parts[0], ":' in the file first"));
  }
  // (yaml-cpp throws on IsMap() of an absent key's node: ask IsDefined() first.)
  const bool is_map = section.IsDefined() && section.IsMap();
  if (remove) {
    if (is_map) section.remove(parts[1]);
    ctx.forget(path);
    return;
  }
  if (!is_map) {
    root[parts[0]] = YAML::Node(YAML::NodeType::Map);
    ctx.set_location(parts[0], where);
  }
  root[parts[0]][parts[1]] = value;
  ctx.set_location(path, where);
}

// Every key in the tree must be one the table knows.
void reject_unknown_keys(const YAML::Node& root, const ConfigContext& ctx) {
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string name = it->first.Scalar();
    if (find_field("", name)) continue;
    if (!is_section(name)) {
      ctx.fail(name, str_cat("unknown key '", name, "' at the top level"), unknown_key_hint("", name));
    }
    const YAML::Node section = it->second;  // a copy: `it->` hands out a temporary
    if (section.IsNull()) continue;  // "controller:" with every key commented out
    if (!section.IsMap()) {
      // "checkpoint:\n  keep_last 4": one key line without its ':' reads as
      // the section's scalar value.
      const std::string text = section.IsScalar() ? section.Scalar() : "";
      if (text.find(' ') != std::string::npos && find_field(name, text.substr(0, text.find(' ')))) {
        ctx.fail(name, str_cat("expected a section of keys, got ", detail::describe_value(section)),
                 unknown_key_hint(name, text));
      }
      ctx.fail(name, str_cat("expected a section of keys, got ", detail::describe_value(section)),
               str_cat("write its keys on the lines below '", name, ":', indented, e.g. '  ", keys_of(name).front(),
                       ": ...'"));
    }
    for (auto key = section.begin(); key != section.end(); ++key) {
      const std::string key_name = key->first.Scalar();
      if (!find_field(name, key_name)) {
        ctx.fail(name + "." + key_name, str_cat("unknown key '", key_name, "' in section '", name, "'"),
                 unknown_key_hint(name, key_name));
      }
    }
  }
}

TrainConfig read_fields(const YAML::Node& root, const ConfigContext& ctx) {
  TrainConfig config;
  for (const Field& f : detail::config_fields()) {
    // Const access: looking a key up must not insert it.
    const YAML::Node section = f.section.empty() ? root : root[f.section];
    const bool has_section = section.IsDefined() && section.IsMap();  // IsMap() throws on an absent node
    // (A default YAML::Node is a defined null; an absent key needs Undefined.)
    const YAML::Node value = has_section ? section[f.key] : YAML::Node(YAML::NodeType::Undefined);
    if (!value.IsDefined()) {
      if (f.required) {
        ctx.fail(f.path(), str_cat("missing; expected ", f.expected),
                 str_cat("add '", f.key, ": ...' under '", f.section, ":' (configs/README.md describes it)"));
      }
      continue;
    }
    f.read(value, config, ctx);
  }
  return config;
}

}  // namespace

TrainConfig load_config_text(const std::string& yaml, const std::string& origin,
                             const std::vector<std::string>& overrides) {
  ConfigContext ctx(origin);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    const std::string where = e.mark.is_null() ? origin : str_cat(origin, ":", e.mark.line + 1, ":", e.mark.column + 1);
    RWKV_FAIL(where, ": YAML syntax error: ", e.msg,
              "\n  ---> HINT: indent with spaces (never tabs), write 'key: value' (check the line above too for a "
              "missing ':'), close every [ and \"");
  }
  if (documents.size() > 1) {
    RWKV_FAIL(origin, ": holds ", documents.size(), " YAML documents (separated by ---); expected one",
              "\n  ---> HINT: keep one config per file");
  }
  YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
  if (!root.IsDefined() || root.IsNull()) {
    RWKV_FAIL(origin, ": the config is empty; expected the sections model, data and train",
              "\n  ---> HINT: start from configs/tiny.yaml");
  }
  if (!root.IsMap()) {
    RWKV_FAIL(detail::mark_location(origin, root), ": expected a mapping of sections at the top level, got ",
              detail::describe_value(root), "\n  ---> HINT: start from configs/tiny.yaml");
  }
  TrainConfig config;
  try {
    index_locations(root, "", ctx);
    for (const std::string& text : overrides) apply_override(root, text, ctx);
    reject_unknown_keys(root, ctx);
    config = read_fields(root, ctx);
  } catch (const YAML::Exception& e) {
    // Not expected (every node is checked before use), but a yaml-cpp
    // exception must still end as a message that names the file.
    RWKV_FAIL(origin, ": cannot read the config: ", e.what(), "\n  ---> HINT: compare the file with configs/tiny.yaml");
  }
  if (config.model.dim_ffn == 0) config.model.dim_ffn = 4 * config.model.n_embd;  // the RWKV-4 default
  detail::check_config(config, ctx);
  return config;
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    RWKV_FAIL(path, ": is a directory; expected a YAML config file\n  ---> HINT: e.g. configs/tiny.yaml");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    RWKV_FAIL(path, ": cannot open the config file (", std::strerror(errno),
              ")\n  ---> HINT: check the path; configs/ holds ready-made configs, e.g. configs/tiny.yaml");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) RWKV_FAIL(path, ": cannot read the config file\n  ---> HINT: check the file and its permissions");
  return load_config_text(text.str(), path, overrides);
}

}  // namespace rwkv::trainer
