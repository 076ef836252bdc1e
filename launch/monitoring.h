// What the controller serves over HTTP (next to gRPC, on its own port):
//   GET /              the web page: live loss curve and rank health (web_page.cpp)
//   GET /api/status    the job's status as JSON            (token required)
//   GET /api/metrics   metric points as JSON: ?name=loss&since_step=0&limit=2000&job=  (token required)
//   GET /metrics       Prometheus text exposition format 0.0.4 (token required)
//   GET /healthz       "ok": the process is up (no token, no data)
// The token (job or admin) comes as "Authorization: Bearer <token>" (what a
// Prometheus scrape config sends) or as ?token=<token> (the web page passes
// the one in its own URL on).
#pragma once

#include <string>

#include "launch/controller_state.h"
#include "launch/http_server.h"

namespace rwkv::launch {

std::string prometheus_text(ControllerState& state);
std::string status_json(const StatusReply& status);
std::string metrics_json(const MetricsReply& metrics);

HttpResponse handle_http(ControllerState& state, const std::string& job_token, const std::string& admin_token,
                         const HttpRequest& request);

}  // namespace rwkv::launch
