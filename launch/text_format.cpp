#include "launch/text_format.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace rwkv::launch {

namespace {

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

// Shortest text that reads back as the same double (CSV must not lose digits).
std::string exact(double v) {
  char buffer[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  return buffer;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

}  // namespace

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "unknown";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buffer[64];
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%lldh %02lldm %02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  else if (s >= 60)
    std::snprintf(buffer, sizeof buffer, "%lldm %02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
  return buffer;
}

std::string format_time(double wall_time) {
  if (wall_time <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(wall_time);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  return buffer;
}

std::string format_status(const StatusReply& s) {
  std::ostringstream out;
  out << "job         " << s.job() << " (" << s.state() << ", generation " << s.generation() << ")\n";
  if (!s.reason().empty()) out << "reason      " << s.reason() << "\n";
  out << "step        " << s.step() << "/" << s.total_steps();
  if (s.total_steps() > 0)
    out << " (" << fixed(100.0 * static_cast<double>(s.step()) / static_cast<double>(s.total_steps()), 1) << "%)";
  out << "\n";
  out << "loss        " << (s.has_loss() ? fixed(s.loss(), 4) : "-") << "\n";
  out << "tokens/s    " << (s.tokens_per_s() > 0 ? fixed(s.tokens_per_s(), 0) : "-") << "\n";
  out << "ETA         " << format_duration(s.eta_s()) << "\n";
  out << "ranks       " << s.ranks_alive() << "/" << s.world_size() << " alive\n";
  if (s.has_committed())
    out << "checkpoint  step " << s.last_committed().step() << " committed " << format_time(s.last_committed().committed_at())
        << " (" << s.last_committed().dir() << ")\n";
  else
    out << "checkpoint  none committed\n";
  out << "\n" << pad("rank", 6) << pad("host", 18) << pad("pid", 9) << pad("state", 10) << pad("step", 10)
      << "heartbeat\n";
  for (const RankStatus& r : s.ranks()) {
    out << pad(std::to_string(r.rank()), 6) << pad(r.host().empty() ? "-" : r.host(), 18)
        << pad(r.pid() > 0 ? std::to_string(r.pid()) : "-", 9) << pad(r.state(), 10) << pad(std::to_string(r.step()), 10)
        << (r.heartbeat_age_s() >= 0 ? fixed(r.heartbeat_age_s(), 1) + " s ago" : "-");
    if (!r.reason().empty() && r.state() != "alive") out << "  " << r.reason();
    out << "\n";
  }
  return out.str();
}

std::string format_checkpoints(const CheckpointsReply& c) {
  std::ostringstream out;
  out << pad("step", 10) << pad("state", 12) << pad("trigger", 10) << pad("acks", 8) << pad("committed", 21) << "dir / error\n";
  for (const CheckpointInfo& i : c.checkpoints()) {
    out << pad(std::to_string(i.step()), 10) << pad(i.state(), 12) << pad(i.trigger(), 10)
        << pad(str_cat(i.acks(), "/", i.world_size()), 8) << pad(format_time(i.committed_at()), 21)
        << (i.state() == "aborted" ? i.error() : i.dir()) << "\n";
  }
  if (c.checkpoints().empty()) out << "(no checkpoints yet)\n";
  return out.str();
}

std::string metrics_csv(const MetricsReply& m) {
  std::set<std::string> names;
  // (step, rank) -> (wall time, name -> value)
  std::map<std::pair<int64_t, int>, std::pair<double, std::map<std::string, double>>> rows;
  for (const MetricPoint& p : m.points()) {
    names.insert(p.name());
    auto& row = rows[{p.step(), p.rank()}];
    row.first = std::max(row.first, p.wall_time());
    row.second[p.name()] = p.value();
  }
  std::ostringstream out;
  out << "step,rank,wall_time";
  for (const std::string& n : names) out << "," << n;
  out << "\n";
  for (const auto& [key, row] : rows) {
    out << key.first << "," << key.second << "," << fixed(row.first, 3);
    for (const std::string& n : names) {
      out << ",";
      if (auto it = row.second.find(n); it != row.second.end()) out << exact(it->second);
    }
    out << "\n";
  }
  return out.str();
}

std::string format_metrics(const MetricsReply& m) {
  std::ostringstream out;
  for (const MetricPoint& p : m.points())
    out << "step=" << p.step() << " rank=" << p.rank() << " " << p.name() << "=" << exact(p.value()) << "\n";
  if (m.points().empty()) out << "(no metrics yet)\n";
  return out.str();
}

}  // namespace rwkv::launch
