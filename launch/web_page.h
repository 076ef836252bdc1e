// The controller's web page: the job's summary, its live loss curve (SVG,
// one circle per point) and a table of rank health, refreshed every 2 s from
// /api/status and /api/metrics with the token from the page's own URL
// (http://host:port/?token=<job or admin token>&job=<job>).
// Plain HTML, CSS and JavaScript: no build step, no network beyond the controller.
#pragma once

namespace rwkv::launch {

const char* web_page_html();

}  // namespace rwkv::launch
