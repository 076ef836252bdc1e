// rwkv-plan's output: a readable table of the ranked layouts with the best
// one's memory and time broken down, or the same as JSON (--json).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "planner/planner.h"

namespace rwkv::planner {

// The header, the top `top` plans as a table, and the first plan in detail.
std::string format_report(const ModelSpec& m, const Cluster& c, const CostTarget& t, const SearchResult& r, int64_t top);
// One plan's memory and step-time lines (the "best layout" block).
std::string format_plan_details(const Plan& p);

nlohmann::json plan_json(const Plan& p);
nlohmann::json report_json(const ModelSpec& m, const Cluster& c, const CostTarget& t, const SearchResult& r, int64_t top);

}  // namespace rwkv::planner
