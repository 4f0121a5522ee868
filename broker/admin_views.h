// What the admin server renders from a status snapshot, on its own thread:
// the JSON views (/v1/brokers, /v1/topics, /v1/partitions, /v1/groups,
// /v1/queues, /v1/controller), the state metrics, and the process and disk metrics it
// reads from /proc and statvfs when scraped. METRICS.md describes them all.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "broker/status_snapshot.h"

namespace sluice::broker {

// The JSON of view `path` (e.g. "/v1/groups"); nullopt for a path that is no view.
std::optional<std::string> render_admin_view(const StatusSnapshot& snapshot, std::string_view path);
bool is_admin_view(std::string_view path);

// The gauges and counters the snapshot holds; per-partition series too when `partition_level`.
std::vector<prometheus::MetricFamily> state_metrics(const StatusSnapshot& snapshot, bool partition_level);

// process_* (CPU, memory, descriptors, start time) and the log dir's file
// system (free and total bytes), read now.
std::vector<prometheus::MetricFamily> process_and_disk_metrics(const std::string& log_dir);

// Building blocks of the views and metrics, for the federation endpoint's too.
// `s` as a JSON string, escaped in full (clients' own strings).
void json_string(std::string& out, std::string_view s);
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type);
// One sample (a counter's or a gauge's value, by the family's type).
void add(prometheus::MetricFamily& f, double value, std::vector<prometheus::ClientMetric::Label> labels = {});
prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type, double value);

}  // namespace sluice::broker
