#include "federation/status.h"

#include <cstdio>

#include "broker/admin_views.h"

namespace sluice::federation {
namespace {

using prometheus::MetricType;

std::string& key(std::string& out, const char* name) {
  out += '"';
  out += name;
  out += "\":";
  return out;
}

std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  return buf;
}

std::string members_view(const FederationStatus& status) {
  std::string out = "{\"members\":[";
  for (size_t i = 0; i < status.members.size(); ++i) {
    const auto& m = status.members[i];
    if (i) out += ",";
    out += "{";
    broker::json_string(key(out, "name"), m.name);
    broker::json_string(key(out += ",", "bootstrap_servers"), m.bootstrap);
    key(out += ",", "healthy") += m.healthy ? "true" : "false";
    key(out += ",", "brokers") += std::to_string(m.brokers);
    key(out += ",", "partitions") += std::to_string(m.partitions);
    key(out += ",", "federated_partitions") += std::to_string(m.federated_partitions);
    key(out += ",", "health_checks") += std::to_string(m.health_checks);
    key(out += ",", "failed_health_checks") += std::to_string(m.failed_health_checks);
    key(out += ",", "seconds_since_answer") += m.seconds_since_answer < 0 ? "null" : number(m.seconds_since_answer);
    key(out += ",", "last_error");
    if (m.last_error.empty())
      out += "null";
    else
      broker::json_string(out, m.last_error);
    out += "}";
  }
  return out + "]}";
}

std::string topics_view(const FederationStatus& status) {
  std::string out = "{\"topics\":[";
  for (size_t i = 0; i < status.topics.size(); ++i) {
    const auto& t = status.topics[i];
    if (i) out += ",";
    out += "{";
    broker::json_string(key(out, "name"), t.name);
    broker::json_string(key(out += ",", "topic_id"), t.id);
    key(out += ",", "partitions") += std::to_string(t.partitions);
    key(out += ",", "placement") += "[";
    for (size_t j = 0; j < t.placement.size(); ++j) {
      if (j) out += ",";
      out += "{";
      const PlacementSegment& segment = t.placement[j];
      broker::json_string(key(out, "cluster"), segment.cluster);
      key(out += ",", "partitions") += std::to_string(segment.partitions);
      if (segment.first_member_partition != 0)
        key(out += ",", "first_member_partition") += std::to_string(segment.first_member_partition);
      if (!segment.offset_bases.empty()) {
        key(out += ",", "offset_bases") += "[";
        for (size_t k = 0; k < segment.offset_bases.size(); ++k) out += (k ? "," : "") + std::to_string(segment.offset_bases[k]);
        out += "]";
      }
      out += "}";
    }
    out += "]";
    if (!t.move_state.empty()) {
      key(out += ",", "move") += "{";
      broker::json_string(key(out, "from"), t.move_from);
      broker::json_string(key(out += ",", "to"), t.move_to);
      broker::json_string(key(out += ",", "state"), t.move_state);
      key(out += ",", "batches_copied") += std::to_string(t.move_batches_copied) + "}";
    }
    out += "}";
  }
  return out + "]}";
}

struct View {
  std::string_view path;
  std::string (*render)(const FederationStatus&);
};
constexpr View kViews[] = {{"/v1/members", members_view}, {"/v1/topics", topics_view}};

}  // namespace

bool is_federation_view(std::string_view path) {
  for (const View& v : kViews)
    if (v.path == path) return true;
  return false;
}

std::optional<std::string> render_federation_view(const FederationStatus& status, std::string_view path) {
  for (const View& v : kViews)
    if (v.path == path) return v.render(status);
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> federation_metrics(const FederationStatus& status) {
  using broker::add;
  using broker::family;
  auto healthy = family("sluice_federation_member_healthy", "1 while a member cluster answers its health checks",
                        MetricType::Gauge);
  auto brokers = family("sluice_federation_member_brokers", "A member cluster's brokers, as it last answered",
                        MetricType::Gauge);
  auto partitions = family("sluice_federation_member_partitions",
                           "Partitions of the federation's topics placed on a member cluster", MetricType::Gauge);
  auto checks = family("sluice_federation_member_health_checks_total",
                       "Health checks of a member cluster, by result (answered or failed)", MetricType::Counter);
  auto age = family("sluice_federation_member_last_answer_age_seconds",
                    "Time since a member cluster last answered a health check (absent before the first answer)",
                    MetricType::Gauge);
  for (const auto& m : status.members) {
    const std::vector<prometheus::ClientMetric::Label> cluster{{"cluster", m.name}};
    add(healthy, m.healthy ? 1 : 0, cluster);
    add(brokers, static_cast<double>(m.brokers), cluster);
    add(partitions, static_cast<double>(m.federated_partitions), cluster);
    add(checks, static_cast<double>(m.health_checks - m.failed_health_checks), {{"cluster", m.name}, {"result", "answered"}});
    add(checks, static_cast<double>(m.failed_health_checks), {{"cluster", m.name}, {"result", "failed"}});
    if (m.seconds_since_answer >= 0) add(age, m.seconds_since_answer, cluster);
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(broker::single("sluice_federation_topics", "Topics in the federation's map", MetricType::Gauge,
                               static_cast<double>(status.topics.size())));
  for (auto* f : {&healthy, &brokers, &partitions, &checks, &age}) out.push_back(std::move(*f));
  return out;
}

}  // namespace sluice::federation
