#include "broker/admin_views.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace sluice::broker {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// ---- JSON ----

// Group ids, client ids and hosts are the clients' own strings: escaped in full.
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

void json_optional_string(std::string& out, const std::optional<std::string>& s) {
  if (s)
    json_string(out, *s);
  else
    out += "null";
}

void json_ids(std::string& out, const std::vector<int32_t>& ids) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  out += ']';
}

// Writes `"key":` (keys are ours: no escaping needed).
std::string& key(std::string& out, std::string_view name) {
  out += '"';
  out += name;
  out += "\":";
  return out;
}

std::string brokers_view(const StatusSnapshot& s) {
  std::string out = R"({"brokers":[)";
  for (size_t i = 0; i < s.brokers.size(); ++i) {
    const auto& b = s.brokers[i];
    out += i ? ",{" : "{";
    key(out, "id") += std::to_string(b.id) + ",";
    key(out, "rack");
    json_optional_string(out, b.rack);
    key(out += ",", "fenced") += b.fenced ? "true," : "false,";
    key(out, "state") += b.fenced ? R"("fenced",)" : b.in_controlled_shutdown ? R"("shutting_down",)" : R"("running",)";
    key(out, "endpoints") += "[";
    for (size_t j = 0; j < b.endpoints.size(); ++j) {
      out += j ? ",{" : "{";
      key(out, "listener");
      json_string(out, b.endpoints[j].listener);
      key(out += ",", "host");
      json_string(out, b.endpoints[j].host);
      key(out += ",", "port") += std::to_string(b.endpoints[j].port) + "}";
    }
    out += "]}";
  }
  return out + "]}";
}

std::string topics_view(const StatusSnapshot& s) {
  std::string out = R"({"topics":[)";
  for (size_t i = 0; i < s.topics.size(); ++i) {
    const auto& t = s.topics[i];
    out += i ? ",{" : "{";
    key(out, "name");
    json_string(out, t.name);
    key(out += ",", "id");
    json_string(out, t.id);
    key(out += ",", "partitions") += std::to_string(t.partitions) + ",";
    key(out, "replication_factor") += std::to_string(t.replication_factor) + ",";
    key(out, "configs") += "{";
    bool first = true;
    for (const auto& [name, value] : t.configs) {
      if (!first) out += ",";
      first = false;
      json_string(out, name);
      out += ":";
      json_string(out, value);
    }
    out += "}}";
  }
  return out + "]}";
}

std::string partitions_view(const StatusSnapshot& s) {
  std::string out = R"({"partitions":[)";
  for (size_t i = 0; i < s.partitions.size(); ++i) {
    const auto& p = s.partitions[i];
    out += i ? ",{" : "{";
    key(out, "topic");
    json_string(out, p.topic);
    key(out += ",", "partition") += std::to_string(p.partition) + ",";
    key(out, "leader") += std::to_string(p.leader) + ",";
    key(out, "leader_epoch") += std::to_string(p.leader_epoch) + ",";
    json_ids(key(out, "replicas"), p.replicas);
    json_ids(key(out += ",", "isr"), p.isr);
    key(out += ",", "local");
    if (!p.local) {
      out += "null}";
      continue;
    }
    const auto& r = *p.local;
    out += "{";
    key(out, "leader") += r.leader ? "true," : "false,";
    key(out, "high_watermark") += std::to_string(r.high_watermark) + ",";
    key(out, "log_start_offset") += std::to_string(r.log_start_offset) + ",";
    key(out, "log_end_offset") += std::to_string(r.log_end_offset) + ",";
    key(out, "size_bytes") += std::to_string(r.size_bytes) + ",";
    key(out, "segments") += std::to_string(r.segments) + "}}";
  }
  return out + "]}";
}

int64_t lag_of(const StatusSnapshot::OffsetRow& o) { return o.end_offset ? std::max<int64_t>(*o.end_offset - o.committed_offset, 0) : 0; }

std::string groups_view(const StatusSnapshot& s) {
  std::string out = R"({"groups":[)";
  for (size_t i = 0; i < s.groups.size(); ++i) {
    const auto& g = s.groups[i];
    out += i ? ",{" : "{";
    key(out, "group");
    json_string(out, g.group);
    key(out += ",", "state");
    json_string(out, g.state);
    key(out += ",", "protocol_type");
    json_string(out, g.protocol_type);
    key(out += ",", "members") += "[";
    for (size_t j = 0; j < g.members.size(); ++j) {
      const auto& m = g.members[j];
      out += j ? ",{" : "{";
      key(out, "member_id");
      json_string(out, m.member_id);
      key(out += ",", "group_instance_id");
      json_optional_string(out, m.group_instance_id);
      key(out += ",", "client_id");
      json_string(out, m.client_id);
      key(out += ",", "client_host");
      json_string(out, m.client_host);
      out += "}";
    }
    key(out += "],", "offsets") += "[";
    for (size_t j = 0; j < g.offsets.size(); ++j) {
      const auto& o = g.offsets[j];
      out += j ? ",{" : "{";
      key(out, "topic");
      json_string(out, o.topic);
      key(out += ",", "partition") += std::to_string(o.partition) + ",";
      key(out, "committed_offset") += std::to_string(o.committed_offset) + ",";
      key(out, "end_offset") += (o.end_offset ? std::to_string(*o.end_offset) : "null") + ",";
      key(out, "lag") += (o.end_offset ? std::to_string(lag_of(o)) : "null") + "}";
    }
    out += "]}";
  }
  return out + "]}";
}

std::string queues_view(const StatusSnapshot& s) {
  std::string out = "{";
  key(out, "queues") += "[";
  for (size_t i = 0; i < s.queues.size(); ++i) {
    const auto& q = s.queues[i];
    out += i ? ",{" : "{";
    key(out, "topic");
    json_string(out, q.topic);
    key(out += ",", "partition") += std::to_string(q.partition) + ",";
    key(out, "group");
    json_string(out, q.group);
    key(out += ",", "consumed_offset") += (q.consumed_offset ? std::to_string(*q.consumed_offset) : "null") + ",";
    key(out, "log_start_offset") += std::to_string(q.log_start_offset) + ",";
    key(out, "high_watermark") += std::to_string(q.high_watermark) + ",";
    key(out, "depth") += std::to_string(q.depth) + "}";
  }
  return out + "]}";
}

std::string controller_view(const StatusSnapshot& s) {
  size_t fenced = 0;
  for (const auto& b : s.brokers) fenced += b.fenced ? 1 : 0;
  std::string out = "{";
  key(out, "active_controller_id") += std::to_string(s.active_controller_id) + ",";
  key(out, "node_id") += std::to_string(s.node_id) + ",";
  key(out, "is_active_controller") += s.is_active_controller ? "true," : "false,";
  key(out, "cluster_id");
  json_string(out, s.cluster_id);
  key(out += ",", "metadata_offset") += std::to_string(s.metadata_offset) + ",";
  key(out, "registered_brokers") += std::to_string(s.brokers.size()) + ",";
  key(out, "fenced_brokers") += std::to_string(fenced) + "}";
  return out;
}

}  // namespace

// ---- Prometheus families ----

MetricFamily family(std::string name, std::string help, MetricType type) {
  return MetricFamily{std::move(name), std::move(help), type, {}};
}

void add(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
  MetricFamily f = family(std::move(name), std::move(help), type);
  add(f, value);
  return f;
}

namespace {

struct View {
  std::string_view path;
  std::string (*render)(const StatusSnapshot&);
};
constexpr View kViews[] = {{"/v1/brokers", brokers_view},
                           {"/v1/topics", topics_view},
                           {"/v1/partitions", partitions_view},
                           {"/v1/groups", groups_view},
                           {"/v1/queues", queues_view},
                           {"/v1/controller", controller_view}};

const View* find_view(std::string_view path) {
  for (const View& v : kViews)
    if (v.path == path) return &v;
  return nullptr;
}

}  // namespace

bool is_admin_view(std::string_view path) { return find_view(path) != nullptr; }

std::optional<std::string> render_admin_view(const StatusSnapshot& snapshot, std::string_view path) {
  const View* view = find_view(path);
  if (!view) return std::nullopt;
  return view->render(snapshot);
}

std::vector<MetricFamily> state_metrics(const StatusSnapshot& s, bool partition_level) {
  std::vector<MetricFamily> out;
  MetricFamily info = family("sluice_node_info", "This node: its id, cluster and roles (always 1)", MetricType::Gauge);
  add(info, 1, {{"cluster_id", s.cluster_id}, {"node_id", std::to_string(s.node_id)}, {"roles", s.roles}});
  out.push_back(std::move(info));

  // ---- replication and topics ----
  double hosted = 0, led = 0, under_replicated = 0, under_min_isr = 0, offline = 0, lag_records = 0, lag_ms = 0,
         segments = 0, used_bytes = 0;
  std::map<std::string, double> topic_log_bytes;
  MetricFamily p_start = family("sluice_partition_log_start_offset", "A replica's log start offset", MetricType::Gauge);
  MetricFamily p_end = family("sluice_partition_log_end_offset", "A replica's log end offset", MetricType::Gauge);
  MetricFamily p_hw = family("sluice_partition_high_watermark", "A replica's high watermark", MetricType::Gauge);
  MetricFamily p_bytes = family("sluice_partition_log_bytes", "A replica's size on disk", MetricType::Gauge);
  MetricFamily p_isr = family("sluice_partition_in_sync_replicas", "A partition's ISR size", MetricType::Gauge);
  MetricFamily p_leader = family("sluice_partition_leader", "1 where this node leads the partition", MetricType::Gauge);
  for (const auto& p : s.partitions) {
    if (p.leader < 0) ++offline;
    if (!p.local) continue;
    const auto& r = *p.local;
    ++hosted;
    segments += static_cast<double>(r.segments);
    used_bytes += static_cast<double>(r.size_bytes);
    topic_log_bytes[p.topic] += static_cast<double>(r.size_bytes);
    if (r.leader) {
      ++led;
      if (p.isr.size() < p.replicas.size()) ++under_replicated;
      if (static_cast<int64_t>(p.isr.size()) < r.min_insync_replicas) ++under_min_isr;
      lag_records = std::max(lag_records, static_cast<double>(r.max_follower_lag_records));
      lag_ms = std::max(lag_ms, static_cast<double>(r.max_follower_lag_ms));
    }
    if (partition_level) {
      const std::vector<ClientMetric::Label> labels{{"partition", std::to_string(p.partition)}, {"topic", p.topic}};
      add(p_start, static_cast<double>(r.log_start_offset), labels);
      add(p_end, static_cast<double>(r.log_end_offset), labels);
      add(p_hw, static_cast<double>(r.high_watermark), labels);
      add(p_bytes, static_cast<double>(r.size_bytes), labels);
      add(p_isr, static_cast<double>(p.isr.size()), labels);
      add(p_leader, r.leader ? 1 : 0, labels);
    }
  }
  out.push_back(single("sluice_partitions", "Replicas this node holds", MetricType::Gauge, hosted));
  out.push_back(single("sluice_partitions_led", "Partitions this node leads", MetricType::Gauge, led));
  out.push_back(single("sluice_under_replicated_partitions", "Led partitions whose ISR is smaller than their replicas",
                       MetricType::Gauge, under_replicated));
  out.push_back(single("sluice_under_min_isr_partitions", "Led partitions whose ISR is below min.insync.replicas",
                       MetricType::Gauge, under_min_isr));
  out.push_back(single("sluice_replica_max_lag_records", "The most records a follower of a led partition is behind",
                       MetricType::Gauge, lag_records));
  out.push_back(single("sluice_replica_max_lag_seconds",
                       "The longest a follower of a led partition has not been caught up", MetricType::Gauge,
                       lag_ms / 1000.0));
  out.push_back(single("sluice_isr_shrinks_total", "ISR changes of led partitions that removed a replica",
                       MetricType::Counter, static_cast<double>(s.replication.isr_shrinks)));
  out.push_back(single("sluice_isr_expands_total", "ISR changes of led partitions that added a replica",
                       MetricType::Counter, static_cast<double>(s.replication.isr_expands)));
  out.push_back(single("sluice_leader_elections_total", "Times this node became a partition's leader",
                       MetricType::Counter, static_cast<double>(s.replication.leader_elections)));
  if (partition_level)
    for (auto* f : {&p_start, &p_end, &p_hw, &p_bytes, &p_isr, &p_leader}) out.push_back(std::move(*f));

  MetricFamily topic_partitions = family("sluice_topic_partitions", "A topic's partition count", MetricType::Gauge);
  MetricFamily topic_bytes = family("sluice_topic_log_bytes", "Size on disk of a topic's replicas on this node",
                                    MetricType::Gauge);
  for (const auto& t : s.topics) {
    add(topic_partitions, t.partitions, {{"topic", t.name}});
    if (s.has_broker_role) add(topic_bytes, topic_log_bytes[t.name], {{"topic", t.name}});
  }
  out.push_back(std::move(topic_partitions));
  out.push_back(std::move(topic_bytes));

  // ---- the controller ----
  out.push_back(single("sluice_controller_active", "1 on the node whose controller is active", MetricType::Gauge,
                       s.is_active_controller ? 1 : 0));
  if (s.is_active_controller) {
    double fenced = 0;
    for (const auto& b : s.brokers) fenced += b.fenced ? 1 : 0;
    out.push_back(single("sluice_controller_registered_brokers", "Brokers registered with the controller",
                         MetricType::Gauge, static_cast<double>(s.brokers.size())));
    out.push_back(single("sluice_controller_fenced_brokers", "Registered brokers the controller has fenced",
                         MetricType::Gauge, fenced));
    out.push_back(single("sluice_offline_partitions", "Partitions with no leader", MetricType::Gauge, offline));
    MetricFamily events = family("sluice_controller_events_total", "What the active controller did, by event",
                                 MetricType::Counter);
    for (size_t i = 0; i < s.controller_events.size(); ++i)
      add(events, static_cast<double>(s.controller_events[i]),
          {{"event", controller::Controller::event_name(static_cast<controller::Controller::Event>(i))}});
    out.push_back(std::move(events));
  }
  out.push_back(single("sluice_metadata_offset", "The metadata log offset this node's image has applied",
                       MetricType::Gauge, static_cast<double>(s.metadata_offset)));
  out.push_back(single("sluice_metadata_records_applied_total", "Metadata records applied to this node's image",
                       MetricType::Counter, static_cast<double>(s.metadata_records_applied)));

  // ---- consumer groups ----
  MetricFamily groups = family("sluice_groups", "Groups this node coordinates, by state", MetricType::Gauge);
  std::map<std::string, double> by_state{{"Empty", 0}, {"PreparingRebalance", 0}, {"CompletingRebalance", 0}, {"Stable", 0}};
  MetricFamily members = family("sluice_group_members", "A group's members", MetricType::Gauge);
  MetricFamily state = family("sluice_group_state", "A group's state (always 1)", MetricType::Gauge);
  MetricFamily committed = family("sluice_group_committed_offset",
                                  "Sum of a group's committed offsets over a topic's partitions", MetricType::Gauge);
  MetricFamily lag = family("sluice_group_lag", "Sum over a topic's partitions of end offset - committed offset",
                            MetricType::Gauge);
  MetricFamily partition_lag = family("sluice_group_partition_lag", "A group's lag on one partition", MetricType::Gauge);
  for (const auto& g : s.groups) {
    by_state[g.state] += 1;
    add(members, static_cast<double>(g.members.size()), {{"group", g.group}});
    add(state, 1, {{"group", g.group}, {"state", g.state}});
    std::map<std::string, std::pair<double, double>> by_topic;  // committed, lag
    for (const auto& o : g.offsets) {
      auto& [c, l] = by_topic[o.topic];
      c += static_cast<double>(std::max<int64_t>(o.committed_offset, 0));
      l += static_cast<double>(lag_of(o));
      if (partition_level && o.end_offset)
        add(partition_lag, static_cast<double>(lag_of(o)),
            {{"group", g.group}, {"partition", std::to_string(o.partition)}, {"topic", o.topic}});
    }
    for (const auto& [topic, values] : by_topic) {
      add(committed, values.first, {{"group", g.group}, {"topic", topic}});
      add(lag, values.second, {{"group", g.group}, {"topic", topic}});
    }
  }
  for (const auto& [name, count] : by_state) add(groups, count, {{"state", name}});
  out.push_back(std::move(groups));
  out.push_back(std::move(members));
  out.push_back(std::move(state));
  out.push_back(std::move(committed));
  out.push_back(std::move(lag));
  if (partition_level) out.push_back(std::move(partition_lag));
  out.push_back(single("sluice_group_rebalances_total", "Rebalances started, over all groups", MetricType::Counter,
                       static_cast<double>(s.group_rebalances)));

  // ---- queues (delete after consumption) ----
  MetricFamily depth = family("sluice_queue_depth",
                              "Records a group listed in a topic's delete.after.consumption.groups has not consumed "
                              "yet, over the partitions this node leads",
                              MetricType::Gauge);
  std::map<std::pair<std::string, std::string>, double> depth_by_topic_group;
  for (const auto& q : s.queues) depth_by_topic_group[{q.topic, q.group}] += static_cast<double>(q.depth);
  for (const auto& [topic_group, records] : depth_by_topic_group)
    add(depth, records, {{"group", topic_group.second}, {"topic", topic_group.first}});
  out.push_back(std::move(depth));
  out.push_back(single("sluice_queue_releases_total",
                       "Times a led partition's log start moved because its delete.after.consumption.groups consumed",
                       MetricType::Counter, static_cast<double>(s.replication.consumption_releases)));

  // ---- storage ----
  out.push_back(single("sluice_log_segments", "Segment files of the replicas this node holds", MetricType::Gauge,
                       segments));
  MetricFamily used = family("sluice_log_dir_used_bytes", "Size of the replicas' logs in the log dir", MetricType::Gauge);
  add(used, used_bytes, {{"dir", s.log_dir}});
  out.push_back(std::move(used));
  out.push_back(single("sluice_retention_deleted_segments_total", "Segments deleted by retention.ms / retention.bytes",
                       MetricType::Counter, static_cast<double>(s.replication.retention_deleted_segments)));
  return out;
}

std::vector<MetricFamily> process_and_disk_metrics(const std::string& log_dir) {
  std::vector<MetricFamily> out;
  struct statvfs fs {};
  if (!log_dir.empty() && ::statvfs(log_dir.c_str(), &fs) == 0) {
    MetricFamily free_bytes = family("sluice_log_dir_free_bytes", "Free bytes of the log dir's file system",
                                     MetricType::Gauge);
    add(free_bytes, static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize), {{"dir", log_dir}});
    MetricFamily total = family("sluice_log_dir_total_bytes", "Size of the log dir's file system", MetricType::Gauge);
    add(total, static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize), {{"dir", log_dir}});
    out.push_back(std::move(free_bytes));
    out.push_back(std::move(total));
  }

  // /proc/self/stat: after the command name (in parentheses, may hold spaces), field 3 on.
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(stat.substr(paren + 2));
    std::vector<std::string> f;
    for (std::string v; fields >> v;) f.push_back(v);
    // f[0] is field 3 (state): field n is f[n - 3].
    if (f.size() > 21) {
      const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
      const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
      const double cpu = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
      out.push_back(single("process_cpu_seconds_total", "User and system CPU time of the process, in seconds",
                           MetricType::Counter, cpu));
      out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes", MetricType::Gauge,
                           std::stod(f[23 - 3])));
      out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes", MetricType::Gauge,
                           std::stod(f[24 - 3]) * page));
      // Start time: ticks after boot, plus the boot time from /proc/stat.
      std::ifstream proc_stat("/proc/stat");
      for (std::string line; std::getline(proc_stat, line);)
        if (line.rfind("btime ", 0) == 0) {
          out.push_back(single("process_start_time_seconds", "Start time of the process since the epoch, in seconds",
                               MetricType::Gauge, std::stod(line.substr(6)) + std::stod(f[22 - 3]) / ticks));
          break;
        }
    }
  }
  double open_fds = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir))
      if (e->d_name[0] != '.') ++open_fds;
    ::closedir(dir);
    out.push_back(single("process_open_fds", "Open file descriptors", MetricType::Gauge, open_fds - 1));  // less opendir's
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0)
    out.push_back(single("process_max_fds", "The open file descriptor limit", MetricType::Gauge,
                         static_cast<double>(limit.rlim_cur)));
  return out;
}

}  // namespace sluice::broker
