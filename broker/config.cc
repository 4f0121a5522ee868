#include "broker/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace sluice::broker {
namespace {

constexpr int64_t kInt32Max = INT32_MAX;

// The keys Sluice reads. Defaults are Kafka's, except where the embedded
// single-node default differs (node.id, listeners, log.dirs): with no
// configuration at all one process is a complete cluster with data in ./data.
const std::vector<ConfigDefinition> kDefinitions = [] {
  std::vector<ConfigDefinition> defs = {
      {"admin.listeners", ConfigType::kString, "http://127.0.0.1:9644"},
      // How often the network thread copies its state for the admin server (JSON views, state metrics).
      {"admin.refresh.interval.ms", ConfigType::kInt, "1000", 100, kInt32Max},
      {"advertised.listeners", ConfigType::kString, nullptr},
      {"auto.create.topics.enable", ConfigType::kBoolean, "true"},
      {"broker.id", ConfigType::kInt, nullptr, 0, kInt32Max},
      {"compression.type", ConfigType::kString, "producer"},
      {"connections.max.idle.ms", ConfigType::kLong, "600000"},
      {"default.replication.factor", ConfigType::kInt, "1", 1, INT16_MAX},
      // Sluice's own: how often partition leaders ask where the groups of
      // delete.after.consumption.groups are, and release what they consumed.
      {"delete.after.consumption.check.interval.ms", ConfigType::kLong, "1000", 1},
      {"delete.topic.enable", ConfigType::kBoolean, "true"},
      {"fetch.max.bytes", ConfigType::kInt, "57671680", 1024, kInt32Max},
      {"broker.heartbeat.interval.ms", ConfigType::kInt, "2000", 1, kInt32Max},
      {"broker.rack", ConfigType::kString, nullptr},
      {"broker.session.timeout.ms", ConfigType::kInt, "9000", 1, kInt32Max},
      {"controller.listener.names", ConfigType::kList, nullptr},
      {"controller.quorum.voters", ConfigType::kList, nullptr},
      // A quorum of several controllers (KIP-595's names and defaults).
      {"controller.quorum.election.timeout.ms", ConfigType::kInt, "1000", 1, kInt32Max},
      {"controller.quorum.fetch.timeout.ms", ConfigType::kInt, "2000", 1, kInt32Max},
      {"controller.quorum.request.timeout.ms", ConfigType::kInt, "2000", 1, kInt32Max},
      {"group.initial.rebalance.delay.ms", ConfigType::kInt, "3000", 0, kInt32Max},
      {"group.max.session.timeout.ms", ConfigType::kInt, "1800000", 1, kInt32Max},
      // Share groups (KIP-932): Kafka's names, defaults and bounds. Sluice's
      // own switch: served on a single node (default); not yet in a cluster.
      {"group.share.enable", ConfigType::kBoolean, nullptr},
      {"group.share.record.lock.duration.ms", ConfigType::kInt, "30000", 1000, 3600000},
      {"group.share.delivery.count.limit", ConfigType::kInt, "5", 2, 10},
      {"group.share.partition.max.record.locks", ConfigType::kInt, "2000", 100, 10000},
      {"group.share.session.timeout.ms", ConfigType::kInt, "45000", 1, kInt32Max},
      {"group.share.heartbeat.interval.ms", ConfigType::kInt, "5000", 1, kInt32Max},
      {"group.share.max.size", ConfigType::kInt, "200", 1, 1000},
      {"group.share.max.share.sessions", ConfigType::kInt, "2000", 1, kInt32Max},
      {"group.min.session.timeout.ms", ConfigType::kInt, "6000", 1, kInt32Max},
      {"inter.broker.listener.name", ConfigType::kString, nullptr},
      {"listener.security.protocol.map", ConfigType::kString,
       "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"},
      {"listeners", ConfigType::kString, "PLAINTEXT://127.0.0.1:9092"},
      {"log.cleaner.backoff.ms", ConfigType::kLong, "15000", 0},
      {"log.cleanup.policy", ConfigType::kList, "delete"},
      {"log.dir", ConfigType::kString, nullptr},
      {"log.dirs", ConfigType::kString, "./data"},
      {"log.flush.interval.messages", ConfigType::kLong, "9223372036854775807", 1},
      {"log.flush.interval.ms", ConfigType::kLong, nullptr, 0},
      {"log.flush.scheduler.interval.ms", ConfigType::kLong, "9223372036854775807", 1},
      {"log.index.interval.bytes", ConfigType::kInt, "4096", 0, kInt32Max},
      {"log.message.timestamp.type", ConfigType::kString, "CreateTime"},
      {"log.retention.bytes", ConfigType::kLong, "-1"},
      {"log.retention.check.interval.ms", ConfigType::kLong, "300000", 1},
      // Kafka's name for how often recovery points are checkpointed (its default is 60 s;
      // 10 s here keeps what a restart after a crash rescans small).
      {"log.flush.offset.checkpoint.interval.ms", ConfigType::kLong, "10000", 1},
      {"log.retention.hours", ConfigType::kInt, "168", -1, kInt32Max},
      {"log.retention.minutes", ConfigType::kInt, nullptr, -1, kInt32Max},
      {"log.retention.ms", ConfigType::kLong, nullptr, -1},
      {"log.roll.hours", ConfigType::kInt, "168", 1, kInt32Max},
      {"log.roll.ms", ConfigType::kLong, nullptr, 1},
      {"log.segment.bytes", ConfigType::kInt, "1073741824", 14, kInt32Max},
      {"max.connections", ConfigType::kInt, "2147483647", 0, kInt32Max},
      {"max.connections.per.ip", ConfigType::kInt, "2147483647", 0, kInt32Max},
      {"message.max.bytes", ConfigType::kInt, "1048588", 0, kInt32Max},
      {"metadata.log.max.record.bytes.between.snapshots", ConfigType::kLong, "20971520", 1},
      {"min.insync.replicas", ConfigType::kInt, "1", 1, kInt32Max},
      // Per-partition metric series (topic and partition labels); off: bounded label sets.
      {"metrics.partition.level", ConfigType::kBoolean, "false"},
      {"node.id", ConfigType::kInt, "1", 0, kInt32Max},
      {"num.partitions", ConfigType::kInt, "1", 1, kInt32Max},
      {"offset.metadata.max.bytes", ConfigType::kInt, "4096", 0, kInt32Max},
      {"offsets.commit.timeout.ms", ConfigType::kInt, "5000", 1, kInt32Max},
      {"offsets.load.buffer.size", ConfigType::kInt, "5242880", 1, kInt32Max},
      {"offsets.retention.check.interval.ms", ConfigType::kLong, "600000", 1},
      {"offsets.retention.minutes", ConfigType::kInt, "10080", 1, kInt32Max},
      {"offsets.topic.num.partitions", ConfigType::kInt, "50", 1, kInt32Max},
      {"offsets.topic.replication.factor", ConfigType::kShort, "3", 1, INT16_MAX},
      {"offsets.topic.segment.bytes", ConfigType::kInt, "104857600", 1, kInt32Max},
      {"process.roles", ConfigType::kList, "broker,controller"},
      {"producer.id.expiration.check.interval.ms", ConfigType::kInt, "600000", 1, kInt32Max},
      {"producer.id.expiration.ms", ConfigType::kInt, "86400000", 1, kInt32Max},
      // Sluice's own: serve idempotent producers (InitProducerId). Kafka has no such switch.
      {"replica.fetch.max.bytes", ConfigType::kInt, "1048576", 0, kInt32Max},
      {"replica.fetch.wait.max.ms", ConfigType::kInt, "500", 0, kInt32Max},
      {"num.replica.fetchers", ConfigType::kInt, "1", 1, 64},
      {"replica.lag.time.max.ms", ConfigType::kLong, "30000", 1},
      // Share coordinators (a cluster's share-partition state, share_state_coordinator.h).
      {"share.coordinator.load.buffer.size", ConfigType::kInt, "5242880", 1, kInt32Max},
      {"share.coordinator.state.topic.min.isr", ConfigType::kShort, "2", 1, INT16_MAX},
      {"share.coordinator.state.topic.num.partitions", ConfigType::kInt, "50", 1, kInt32Max},
      {"share.coordinator.state.topic.replication.factor", ConfigType::kShort, "3", 1, INT16_MAX},
      {"share.coordinator.state.topic.segment.bytes", ConfigType::kInt, "104857600", 1, kInt32Max},
      {"share.coordinator.write.timeout.ms", ConfigType::kInt, "5000", 1, kInt32Max},
      {"sluice.idempotence.enable", ConfigType::kBoolean, "true"},
      {"socket.request.max.bytes", ConfigType::kInt, "104857600", 1, kInt32Max},
      {"transaction.state.log.min.isr", ConfigType::kInt, "2", 1, kInt32Max},
      {"transaction.state.log.replication.factor", ConfigType::kShort, "3", 1, INT16_MAX},
      {"unclean.leader.election.enable", ConfigType::kBoolean, "false"},
      // KIP-392: which replica a consumer in a rack (client.rack) reads from. Empty: the leader.
      {"replica.selector.class", ConfigType::kString, ""},
      // Preferred leaders take their partitions back when a broker's imbalance passes the percentage.
      {"auto.leader.rebalance.enable", ConfigType::kBoolean, "true"},
      {"leader.imbalance.check.interval.seconds", ConfigType::kLong, "300", 1},
      {"leader.imbalance.per.broker.percentage", ConfigType::kInt, "10", 0, 100},
  };
  std::sort(defs.begin(), defs.end(), [](const auto& a, const auto& b) { return std::string_view(a.name) < b.name; });
  return defs;
}();

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\f");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\f");
  return std::string(s.substr(b, e - b + 1));
}

bool parse_int64(std::string_view text, int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

// Splits "key=value", "key: value" or "key value" as Java properties files do.
std::pair<std::string, std::string> split_property(const std::string& line) {
  size_t sep = line.find_first_of("=:");
  size_t space = line.find_first_of(" \t");
  if (sep == std::string::npos || (space != std::string::npos && space < sep &&
                                   line.find_first_not_of(" \t", space) != sep))
    sep = space;
  if (sep == std::string::npos) return {trim(line), ""};
  return {trim(line.substr(0, sep)), trim(line.substr(sep + 1))};
}

}  // namespace

const std::vector<ConfigDefinition>& BrokerConfig::definitions() { return kDefinitions; }

const ConfigDefinition* BrokerConfig::find_definition(std::string_view name) {
  auto it = std::lower_bound(kDefinitions.begin(), kDefinitions.end(), name,
                             [](const ConfigDefinition& d, std::string_view n) { return std::string_view(d.name) < n; });
  return it != kDefinitions.end() && it->name == name ? &*it : nullptr;
}

std::vector<Listener> parse_listeners(std::string_view value, std::string_view key) {
  std::vector<Listener> out;
  std::stringstream in{std::string(value)};
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    auto bad = [&](const char* why) {
      return ConfigError("Invalid value '" + item + "' for configuration " + std::string(key) + ": " + why);
    };
    size_t scheme = item.find("://");
    if (scheme == std::string::npos || scheme == 0) throw bad("expected NAME://host:port");
    size_t colon = item.rfind(':');
    if (colon <= scheme + 2) throw bad("missing port");
    Listener l;
    l.name = item.substr(0, scheme);
    l.host = item.substr(scheme + 3, colon - scheme - 3);
    if (l.host.size() >= 2 && l.host.front() == '[' && l.host.back() == ']') l.host = l.host.substr(1, l.host.size() - 2);
    int64_t port = 0;
    if (!parse_int64(std::string_view(item).substr(colon + 1), port) || port < 0 || port > 65535)
      throw bad("port must be a number from 0 to 65535");
    l.port = static_cast<uint16_t>(port);
    for (const auto& other : out)
      if (other.name == l.name) throw bad("listener names must be unique");
    out.push_back(l);
  }
  return out;
}

void BrokerConfig::set(std::string_view name, std::string_view raw) {
  const ConfigDefinition* def = find_definition(name);
  if (!def) throw ConfigError("Unknown configuration '" + std::string(name) + "'");
  std::string value = trim(raw);
  auto bad = [&](const std::string& why) {
    return ConfigError("Invalid value '" + value + "' for configuration " + std::string(name) + ": " + why);
  };
  switch (def->type) {
    case ConfigType::kBoolean:
      if (!parse_bool(value)) throw bad("expected true or false");
      break;
    case ConfigType::kInt:
    case ConfigType::kShort:
    case ConfigType::kLong: {
      int64_t n = 0;
      if (!parse_int64(value, n)) throw bad("expected an integer");
      int64_t lo = def->min, hi = def->max;
      if (def->type == ConfigType::kInt) lo = std::max<int64_t>(lo, INT32_MIN), hi = std::min<int64_t>(hi, INT32_MAX);
      if (def->type == ConfigType::kShort) lo = std::max<int64_t>(lo, INT16_MIN), hi = std::min<int64_t>(hi, INT16_MAX);
      if (n < lo || n > hi) throw bad("value must be between " + std::to_string(lo) + " and " + std::to_string(hi));
      break;
    }
    default:
      break;
  }
  if (name == "listeners" || name == "advertised.listeners") {
    if (parse_listeners(value, name).empty()) throw bad("at least one listener is required");
  }
  if (name == "admin.listeners") {  // empty: no admin server
    const auto admin = parse_listeners(value, name);
    if (admin.size() > 1) throw bad("one admin listener at most");
    if (!admin.empty() && admin[0].name != "http") throw bad("expected http://host:port");
  }
  if (name == "process.roles") {
    std::stringstream in(value);
    std::string role;
    while (std::getline(in, role, ','))
      if (trim(role) != "broker" && trim(role) != "controller") throw bad("roles are broker and controller");
  }
  if (name == "log.dirs" && trim(value).empty()) throw bad("at least one directory is required");
  if (name == "log.message.timestamp.type" && value != "CreateTime" && value != "LogAppendTime")
    throw bad("expected CreateTime or LogAppendTime");
  explicit_.insert_or_assign(std::string(name), value);
}

std::vector<std::pair<std::string, std::string>> read_properties(const std::optional<std::string>& file,
                                                                   const std::vector<std::string>& overrides) {
  std::vector<std::pair<std::string, std::string>> properties;
  if (file) {
    std::ifstream in(*file);
    if (!in) throw ConfigError("Cannot read configuration file " + *file);
    std::string line, logical;
    while (std::getline(in, line)) {
      std::string t = trim(line);
      if (logical.empty() && (t.empty() || t[0] == '#' || t[0] == '!')) continue;
      // A trailing backslash continues the value on the next line.
      if (!t.empty() && t.back() == '\\') {
        logical += t.substr(0, t.size() - 1);
        continue;
      }
      logical += t;
      properties.push_back(split_property(logical));
      logical.clear();
    }
  }
  for (const auto& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos) throw ConfigError("Override '" + o + "' must look like key=value");
    properties.emplace_back(trim(o.substr(0, eq)), o.substr(eq + 1));
  }
  return properties;
}

BrokerConfig BrokerConfig::load(const std::optional<std::string>& file, const std::vector<std::string>& overrides) {
  BrokerConfig config;
  for (const auto& [key, value] : read_properties(file, overrides)) config.set(key, value);
  // broker.id is Kafka's older name for node.id; if both are given they must agree.
  auto broker_id = config.value("broker.id");
  if (broker_id) {
    if (config.explicit_.count("node.id") && config.get_string("node.id") != *broker_id)
      throw ConfigError("Invalid configuration broker.id: must match node.id when both are set");
    config.explicit_.insert_or_assign("node.id", *broker_id);
  }
  if (!config.explicit_.count("log.dirs") && config.explicit_.count("log.dir"))
    config.explicit_.insert_or_assign("log.dirs", config.explicit_.at("log.dir"));
  for (const auto& l : config.listeners())
    if (l.name == "SSL" || l.name == "SASL_SSL" || l.name == "SASL_PLAINTEXT")
      throw ConfigError("Invalid configuration listeners: security protocol " + l.name + " is not supported yet");
  if (const std::string selector = config.get_string("replica.selector.class");
      !selector.empty() && selector != kRackAwareReplicaSelector)
    throw ConfigError("Invalid configuration replica.selector.class: only " + std::string(kRackAwareReplicaSelector) +
                      " (or none) is supported");
  config.check_roles();
  return config;
}

// Kafka's KRaft rules for roles, voters and listeners, with the key to blame.
void BrokerConfig::check_roles() const {
  const bool broker = has_role("broker"), controller = has_role("controller");
  if (!broker && !controller) throw ConfigError("Invalid configuration process.roles: give broker, controller or both");
  const auto voters = controller_quorum_voters();
  const auto controller_names = controller_listener_names();
  const int32_t id = node_id();
  const bool voter = std::any_of(voters.begin(), voters.end(), [&](const Voter& v) { return v.id == id; });
  if (voters.empty()) {
    // No quorum configured: today's single node, its controller in-process.
    if (!broker || !controller)
      throw ConfigError("Invalid configuration controller.quorum.voters: required when process.roles is not broker,controller");
    return;
  }
  if (voters.size() > 1 && broker && controller)
    throw ConfigError("Invalid configuration process.roles: a quorum of several controllers runs them as processes of "
                      "their own (process.roles=controller); combined nodes take one voter for now");
  if (controller_names.empty())
    throw ConfigError("Invalid configuration controller.listener.names: required with controller.quorum.voters");
  auto is_controller_listener = [&](const Listener& l) {
    return std::find(controller_names.begin(), controller_names.end(), l.name) != controller_names.end();
  };
  const auto all = listeners();
  if (controller) {
    if (!voter)
      throw ConfigError("Invalid configuration controller.quorum.voters: node.id " + std::to_string(id) +
                        " has the controller role and must be one of the voters");
    auto it = std::find_if(all.begin(), all.end(), [&](const Listener& l) { return l.name == controller_names.front(); });
    if (it == all.end())
      throw ConfigError("Invalid configuration listeners: a controller needs a listener named " + controller_names.front() +
                        " (the first of controller.listener.names)");
  } else {
    if (voter)
      throw ConfigError("Invalid configuration controller.quorum.voters: node.id " + std::to_string(id) +
                        " has only the broker role and must not be a voter");
    if (std::any_of(all.begin(), all.end(), is_controller_listener))
      throw ConfigError("Invalid configuration listeners: a broker-only node must not have a controller listener (" +
                        controller_names.front() + ")");
  }
  if (broker) {
    if (std::all_of(all.begin(), all.end(), is_controller_listener))
      throw ConfigError("Invalid configuration listeners: a broker needs a listener that is not a controller listener");
    if (auto inter = value("inter.broker.listener.name")) {
      auto it = std::find_if(all.begin(), all.end(), [&](const Listener& l) { return l.name == *inter; });
      if (it == all.end() || is_controller_listener(*it))
        throw ConfigError("Invalid configuration inter.broker.listener.name: " + *inter +
                          " must be one of the broker's listeners and not a controller listener");
    }
  } else if (!std::all_of(all.begin(), all.end(), is_controller_listener)) {
    throw ConfigError("Invalid configuration listeners: a controller-only node may only have controller listeners (" +
                      controller_names.front() + ")");
  }
}

bool BrokerConfig::has_role(std::string_view role) const {
  std::stringstream in(get_string("process.roles"));
  std::string item;
  while (std::getline(in, item, ','))
    if (trim(item) == role) return true;
  return false;
}

std::vector<std::string> BrokerConfig::controller_listener_names() const {
  std::vector<std::string> names;
  std::stringstream in(get_string("controller.listener.names"));
  std::string item;
  while (std::getline(in, item, ','))
    if (!trim(item).empty()) names.push_back(trim(item));
  return names;
}

std::vector<Voter> BrokerConfig::controller_quorum_voters() const {
  std::vector<Voter> voters;
  std::stringstream in(get_string("controller.quorum.voters"));
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    auto bad = [&](const char* why) {
      return ConfigError("Invalid value '" + item + "' for configuration controller.quorum.voters: " + why);
    };
    const size_t at = item.find('@');
    const size_t colon = item.rfind(':');
    int64_t id = 0, port = 0;
    if (at == std::string::npos || colon == std::string::npos || colon < at) throw bad("expected id@host:port");
    if (!parse_int64(std::string_view(item).substr(0, at), id) || id < 0 || id > INT32_MAX) throw bad("bad node id");
    if (!parse_int64(std::string_view(item).substr(colon + 1), port) || port <= 0 || port > 65535) throw bad("bad port");
    Voter v{static_cast<int32_t>(id), item.substr(at + 1, colon - at - 1), static_cast<uint16_t>(port)};
    for (const auto& other : voters)
      if (other.id == v.id) throw bad("a node id appears twice");
    voters.push_back(std::move(v));
  }
  return voters;
}

std::optional<Listener> BrokerConfig::admin_listener() const {
  const auto admin = parse_listeners(value("admin.listeners").value_or(""), "admin.listeners");
  if (admin.empty()) return std::nullopt;
  return admin[0];
}

std::vector<Listener> BrokerConfig::broker_listeners() const {
  const auto controller_names = controller_listener_names();
  std::vector<Listener> out;
  for (const auto& l : listeners())
    if (std::find(controller_names.begin(), controller_names.end(), l.name) == controller_names.end()) out.push_back(l);
  return out;
}

std::vector<Listener> BrokerConfig::controller_listeners() const {
  const auto controller_names = controller_listener_names();
  std::vector<Listener> out;
  for (const auto& l : listeners())
    if (std::find(controller_names.begin(), controller_names.end(), l.name) != controller_names.end()) out.push_back(l);
  return out;
}

std::optional<std::string> BrokerConfig::value(std::string_view name) const {
  if (auto it = explicit_.find(name); it != explicit_.end()) return it->second;
  const ConfigDefinition* def = find_definition(name);
  if (!def || !def->default_value) return std::nullopt;
  return std::string(def->default_value);
}

ConfigSource BrokerConfig::source(std::string_view name) const {
  return explicit_.count(name) ? ConfigSource::kStaticBroker : ConfigSource::kDefault;
}

int64_t BrokerConfig::get_long(std::string_view name) const {
  auto v = value(name);
  int64_t n = 0;
  if (!v || !parse_int64(*v, n)) throw ConfigError("Configuration " + std::string(name) + " has no numeric value");
  return n;
}

bool BrokerConfig::get_bool(std::string_view name) const { return parse_bool(value(name).value_or("false")).value_or(false); }

std::string BrokerConfig::get_string(std::string_view name) const { return value(name).value_or(""); }

std::vector<Listener> BrokerConfig::listeners() const { return parse_listeners(get_string("listeners"), "listeners"); }

std::vector<Listener> BrokerConfig::advertised_listeners() const {
  auto v = value("advertised.listeners");
  return v ? parse_listeners(*v, "advertised.listeners") : broker_listeners();
}

std::string BrokerConfig::log_dir() const {
  std::string dirs = get_string("log.dirs");
  return trim(dirs.substr(0, dirs.find(',')));
}

}  // namespace sluice::broker
