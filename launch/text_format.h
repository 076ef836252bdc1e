// The text rwkvctl prints: status, the checkpoint list, metrics as CSV.
// Pure functions of the replies, so tests can check them byte for byte.
#pragma once

#include <string>

#include "launch/controller.pb.h"

namespace rwkv::launch {

// 3725 -> "1h 02m 05s"; 65 -> "1m 05s"; 7 -> "7s"; < 0 -> "unknown".
std::string format_duration(double seconds);
// Seconds since the epoch -> "2026-11-01 12:34:56" (local time).
std::string format_time(double wall_time);
// The `rwkvctl status` block.
std::string format_status(const StatusReply& status);
// The `rwkvctl checkpoints` table.
std::string format_checkpoints(const CheckpointsReply& checkpoints);
// `rwkvctl metrics --csv`: one row per (step, rank), one column per metric
// name (sorted), empty where a metric was not reported at that step:
//   step,rank,wall_time,grad_norm,loss,lr
std::string metrics_csv(const MetricsReply& metrics);
// `rwkvctl metrics` without --csv: one line per point.
std::string format_metrics(const MetricsReply& metrics);

}  // namespace rwkv::launch
