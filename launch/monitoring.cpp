#include "launch/monitoring.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"
#include "launch/tokens.h"
#include "launch/web_page.h"

namespace rwkv::launch {

namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

// Collects samples per metric family so each family's HELP/TYPE comes once,
// followed by all its samples, as the format requires.
class Exposition {
 public:
  void sample(const std::string& name, const std::string& type, const std::string& help, const std::string& labels,
              double value) {
    auto& f = families_[name];
    if (f.type.empty()) {
      f.type = type;
      f.help = help;
      order_.push_back(name);
    }
    f.lines += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(value) + "\n";
  }
  std::string text() const {
    std::string out;
    for (const std::string& name : order_) {
      const Family& f = families_.at(name);
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n" + f.lines;
    }
    return out;
  }

 private:
  struct Family {
    std::string type, help, lines;
  };
  std::map<std::string, Family> families_;
  std::vector<std::string> order_;
};

HttpResponse json_response(const std::string& body) { return {200, "application/json", body}; }

}  // namespace

std::string prometheus_text(ControllerState& state) {
  Exposition e;
  e.sample("rwkv_controller_refused_calls_total", "counter", "Calls refused for a missing or wrong token.", "",
           static_cast<double>(state.refused_calls.load()));
  for (const std::string& id : state.job_ids()) {
    const StatusReply s = state.status(id);
    const std::string job = "job=\"" + label(id) + "\"";
    e.sample("rwkv_job_info", "gauge", "The job's state and generation (value 1).",
             job + ",state=\"" + label(s.state()) + "\",generation=\"" + std::to_string(s.generation()) + "\"", 1);
    e.sample("rwkv_job_step", "gauge", "Optimizer steps completed (the furthest rank).", job, static_cast<double>(s.step()));
    e.sample("rwkv_job_total_steps", "gauge", "Steps the job trains in all.", job, static_cast<double>(s.total_steps()));
    e.sample("rwkv_job_ranks", "gauge", "Ranks of the job.", job, s.world_size());
    e.sample("rwkv_job_ranks_alive", "gauge", "Ranks heartbeating now.", job, s.ranks_alive());
    if (s.has_loss()) e.sample("rwkv_job_loss", "gauge", "Latest training loss.", job, s.loss());
    e.sample("rwkv_job_tokens_per_second", "gauge", "Latest training throughput.", job, s.tokens_per_s());
    if (s.eta_s() >= 0) e.sample("rwkv_job_eta_seconds", "gauge", "Estimated time to the last step.", job, s.eta_s());
    e.sample("rwkv_job_last_committed_step", "gauge", "Step of the newest committed checkpoint (-1: none).", job,
             s.has_committed() ? static_cast<double>(s.last_committed().step()) : -1.0);
    for (const RankStatus& r : s.ranks()) {
      const std::string rank = job + ",rank=\"" + std::to_string(r.rank()) + "\"";
      e.sample("rwkv_rank_up", "gauge", "1 while the rank heartbeats.", rank, r.state() == "alive" ? 1 : 0);
      e.sample("rwkv_rank_step", "gauge", "Steps the rank has completed.", rank, static_cast<double>(r.step()));
      if (r.heartbeat_age_s() >= 0)
        e.sample("rwkv_rank_heartbeat_age_seconds", "gauge", "Seconds since the rank's last heartbeat.", rank,
                 r.heartbeat_age_s());
    }
    for (const auto& [name, m] : state.latest_metrics(id))
      e.sample("rwkv_metric", "gauge", "Latest value of each metric the ranks report.",
               job + ",name=\"" + label(name) + "\"", m.value);
  }
  return e.text();
}

std::string status_json(const StatusReply& s) {
  nlohmann::json j;
  j["job"] = s.job();
  j["state"] = s.state();
  j["reason"] = s.reason();
  j["generation"] = s.generation();
  j["step"] = s.step();
  j["total_steps"] = s.total_steps();
  j["loss"] = s.has_loss() ? nlohmann::json(s.loss()) : nlohmann::json(nullptr);
  j["tokens_per_s"] = s.tokens_per_s();
  j["eta_s"] = s.eta_s() >= 0 ? nlohmann::json(s.eta_s()) : nlohmann::json(nullptr);
  j["world_size"] = s.world_size();
  j["ranks_alive"] = s.ranks_alive();
  j["ranks"] = nlohmann::json::array();
  for (const RankStatus& r : s.ranks())
    j["ranks"].push_back({{"rank", r.rank()}, {"host", r.host()}, {"pid", r.pid()}, {"state", r.state()},
                          {"step", r.step()},
                          {"heartbeat_age_s", r.heartbeat_age_s() >= 0 ? nlohmann::json(r.heartbeat_age_s())
                                                                        : nlohmann::json(nullptr)},
                          {"reason", r.reason()}});
  if (s.has_committed())
    j["last_committed"] = {{"step", s.last_committed().step()}, {"dir", s.last_committed().dir()},
                           {"committed_at", s.last_committed().committed_at()}};
  else
    j["last_committed"] = nullptr;
  return j.dump();
}

std::string metrics_json(const MetricsReply& m) {
  nlohmann::json points = nlohmann::json::array();
  for (const MetricPoint& p : m.points())
    points.push_back({{"step", p.step()}, {"name", p.name()}, {"value", p.value()}, {"rank", p.rank()},
                      {"wall_time", p.wall_time()}});
  return nlohmann::json{{"points", points}}.dump();
}

HttpResponse handle_http(ControllerState& state, const std::string& job_token, const std::string& admin_token,
                         const HttpRequest& request) {
  if (request.path == "/" || request.path == "/index.html") return {200, "text/html; charset=utf-8", web_page_html()};
  if (request.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  const bool api = request.path == "/api/status" || request.path == "/api/metrics";
  if (!api && request.path != "/metrics") return {404, "text/plain; charset=utf-8", "not found\n"};

  std::string token;
  if (auto it = request.headers.find("authorization"); it != request.headers.end() && it->second.rfind("Bearer ", 0) == 0)
    token = it->second.substr(7);
  else if (auto p = request.params.find("token"); p != request.params.end())
    token = p->second;
  const bool allowed = !token.empty() && ((!job_token.empty() && tokens_equal(token, job_token)) ||
                                          (!admin_token.empty() && tokens_equal(token, admin_token)));
  if (!allowed) {
    state.refused_calls.fetch_add(1);
    const char* why = token.empty() ? "missing token" : "wrong token";
    log_warn("controller: refused HTTP ", request.path, " from ", request.peer, ": ", why);
    return {401, "text/plain; charset=utf-8",
            str_cat(why, ": send 'Authorization: Bearer <token>' or ?token=<token> (the job or admin token)\n")};
  }
  auto param = [&](const char* name, const std::string& fallback) {
    auto it = request.params.find(name);
    return it == request.params.end() ? fallback : it->second;
  };
  try {
    if (request.path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", prometheus_text(state)};
    if (request.path == "/api/status") return json_response(status_json(state.status(param("job", ""))));
    MetricsRequest q;
    q.set_job(param("job", ""));
    const std::string names = param("name", "");
    size_t start = 0;
    while (start < names.size()) {
      size_t comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      if (comma > start) q.add_names(names.substr(start, comma - start));
      start = comma + 1;
    }
    q.set_since_step(std::stoll(param("since_step", "0")));
    q.set_limit(std::stoi(param("limit", "0")));
    return json_response(metrics_json(state.metrics(q)));
  } catch (const RpcError& e) {
    return {404, "text/plain; charset=utf-8", str_cat(e.what(), "\n")};
  } catch (const std::invalid_argument&) {
    return {400, "text/plain; charset=utf-8", "since_step and limit must be integers\n"};
  } catch (const std::out_of_range&) {
    return {400, "text/plain; charset=utf-8", "since_step or limit out of range\n"};
  }
}

}  // namespace rwkv::launch
