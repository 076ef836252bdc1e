// The canonical YAML form of a config and its digest. Canonical means: every
// key in the table's order, defaults filled in, numbers in shortest
// round-trip form, strings double-quoted. The dump goes into checkpoints and
// logs; the digest (XXH3-64 of the dump) tells whether two runs trained with
// the same settings, independent of how their YAML files were written.
#include <cstdio>

#define XXH_INLINE_ALL  // header-only use: no library to find or link
#include <xxhash.h>

#include "trainer/config_fields.h"

namespace rwkv::trainer {

std::string config_to_yaml(const TrainConfig& config) {
  std::string out = "# rwkv-dist training config, canonical form (every key; configs/README.md)\n";
  std::string section;
  for (const detail::Field& f : detail::config_fields()) {
    const std::optional<std::string> value = f.dump(config);
    if (!value) continue;
    if (f.section != section) {
      section = f.section;
      out += section + ":\n";
    }
    out += (section.empty() ? "" : "  ") + f.key + ": " + *value + "\n";
  }
  return out;
}

uint64_t config_digest(const TrainConfig& config) {
  const std::string text = config_to_yaml(config);
  return XXH3_64bits(text.data(), text.size());
}

std::string config_digest_hex(const TrainConfig& config) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(config_digest(config)));
  return hex;
}

std::vector<std::string> config_differences(const TrainConfig& before, const TrainConfig& after) {
  std::vector<std::string> differences;
  for (const detail::Field& f : detail::config_fields()) {
    const std::optional<std::string> was = f.dump(before), is = f.dump(after);
    if (was != is) differences.push_back(f.path() + ": " + was.value_or("unset") + " -> " + is.value_or("unset"));
  }
  return differences;
}

}  // namespace rwkv::trainer
