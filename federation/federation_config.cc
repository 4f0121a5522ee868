#include "federation/federation_config.h"

#include "federation/placement.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <sstream>

namespace sluice::federation {
namespace {

using broker::ConfigError;

constexpr std::string_view kClusterPrefix = "federation.cluster.";
constexpr std::string_view kBootstrapSuffix = ".bootstrap.servers";

int64_t parse_long(const std::string& key, const std::string& value, int64_t min, int64_t max = INT32_MAX) {
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || ptr != value.data() + value.size() || value.empty() || out < min || out > max)
    throw ConfigError("Invalid value '" + value + "' for configuration " + key + ": a whole number from " +
                      std::to_string(min) + " to " + std::to_string(max));
  return out;
}

std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> items;
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) items.push_back(item.substr(b, e - b + 1));
  }
  return items;
}

std::vector<HostPort> parse_servers(const std::string& key, const std::string& value) {
  std::vector<HostPort> servers;
  for (const std::string& item : split_list(value)) {
    const size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw ConfigError("Invalid value '" + item + "' for configuration " + key + ": give host:port");
    const int64_t port = parse_long(key, item.substr(colon + 1), 1);
    if (port > 65535)
      throw ConfigError("Invalid value '" + item + "' for configuration " + key + ": the port is over 65535");
    servers.push_back({item.substr(0, colon), static_cast<uint16_t>(port)});
  }
  return servers;
}

}  // namespace

FederationConfig FederationConfig::load(const std::optional<std::string>& file,
                                        const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> values;
  for (auto& [key, value] : broker::read_properties(file, overrides)) values[key] = value;
  FederationConfig config;
  std::vector<std::string> names;
  std::map<std::string, std::vector<HostPort>> bootstraps;
  bool advertised_set = false;
  for (const auto& [key, value] : values) {
    if (key == "node.id") {
      config.node_id = static_cast<int32_t>(parse_long(key, value, 0));
    } else if (key == "listeners" || key == "advertised.listeners") {
      const auto listeners = broker::parse_listeners(value, key);
      if (listeners.size() != 1 || listeners[0].name != "PLAINTEXT")
        throw ConfigError("Invalid configuration " + key + ": give one PLAINTEXT://host:port");
      (key == "listeners" ? config.listener : config.advertised) = listeners[0];
      advertised_set |= key == "advertised.listeners";
    } else if (key == "admin.listeners") {  // empty: no admin server
      const auto listeners = broker::parse_listeners(value, key);
      if (listeners.size() > 1 || (!listeners.empty() && listeners[0].name != "http"))
        throw ConfigError("Invalid configuration " + key + ": give http://host:port, or nothing for no admin server");
      config.admin = listeners.empty() ? std::nullopt : std::optional<broker::Listener>(listeners[0]);
    } else if (key == "log.dirs" || key == "log.dir") {
      config.data_dir = split_list(value).empty() ? value : split_list(value).front();
    } else if (key == "federation.clusters") {
      names = split_list(value);
    } else if (key == "federation.map.cluster") {
      if (!value.empty()) config.map_cluster = value;
    } else if (key == "federation.endpoints") {
      for (const std::string& item : split_list(value)) {
        const size_t at = item.find('@');
        if (at == std::string::npos || at == 0)
          throw ConfigError("Invalid value '" + item + "' for configuration " + key + ": give id@host:port");
        const auto servers = parse_servers(key, item.substr(at + 1));
        if (servers.size() != 1) throw ConfigError("Invalid value '" + item + "' for configuration " + key + ": give id@host:port");
        const auto id = static_cast<int32_t>(parse_long(key, item.substr(0, at), 0));
        for (const auto& e : config.endpoints)
          if (e.id == id) throw ConfigError("Invalid configuration " + key + ": endpoint " + std::to_string(id) + " is named twice");
        config.endpoints.push_back({id, servers[0]});
      }
    } else if (key == "federation.health.check.interval.ms") {
      config.health_check_interval_ms = parse_long(key, value, 10);
    } else if (key == "federation.member.timeout.ms") {
      config.member_timeout_ms = parse_long(key, value, 100);
    } else if (key == "federation.request.timeout.ms") {
      config.request_timeout_ms = parse_long(key, value, 100);
    } else if (key == "auto.create.topics.enable") {
      if (value != "true" && value != "false")
        throw ConfigError("Invalid value '" + value + "' for configuration " + key + ": give true or false");
      config.auto_create_topics = value == "true";
    } else if (key == "num.partitions") {
      config.auto_create_partitions = static_cast<int32_t>(parse_long(key, value, 1));
    } else if (key == "group.initial.rebalance.delay.ms") {
      config.groups.initial_rebalance_delay_ms = static_cast<int32_t>(parse_long(key, value, 0));
    } else if (key == "group.min.session.timeout.ms") {
      config.groups.min_session_timeout_ms = static_cast<int32_t>(parse_long(key, value, 1));
    } else if (key == "group.max.session.timeout.ms") {
      config.groups.max_session_timeout_ms = static_cast<int32_t>(parse_long(key, value, 1));
    } else if (key.starts_with(kClusterPrefix) && key.ends_with(kBootstrapSuffix) &&
               key.size() > kClusterPrefix.size() + kBootstrapSuffix.size()) {
      const std::string name =
          key.substr(kClusterPrefix.size(), key.size() - kClusterPrefix.size() - kBootstrapSuffix.size());
      bootstraps[name] = parse_servers(key, value);
    } else {
      throw ConfigError("Unknown configuration '" + key + "'");
    }
  }
  if (!advertised_set) config.advertised = config.listener;
  if (config.advertised.host.empty() || config.advertised.host == "0.0.0.0" || config.advertised.host == "::")
    throw ConfigError("Invalid configuration advertised.listeners: give a host clients can reach (listeners binds " +
                      (config.listener.host.empty() ? std::string("every address") : config.listener.host) + ")");
  if (names.empty()) throw ConfigError("Invalid configuration federation.clusters: name at least one member cluster");
  for (const std::string& name : names) {
    if (!valid_cluster_name(name))
      throw ConfigError("Invalid configuration federation.clusters: '" + name +
                        "' (member names take letters, digits, '-', '_' and '.')");
    for (const auto& m : config.members)
      if (m.name == name) throw ConfigError("Invalid configuration federation.clusters: " + name + " is named twice");
    const std::string key = std::string(kClusterPrefix) + name + std::string(kBootstrapSuffix);
    auto it = bootstraps.find(name);
    if (it == bootstraps.end() || it->second.empty())
      throw ConfigError("Invalid configuration " + key + ": required for every member in federation.clusters");
    config.members.push_back({name, it->second});
    bootstraps.erase(it);
  }
  if (!bootstraps.empty())
    throw ConfigError("Invalid configuration " + std::string(kClusterPrefix) + bootstraps.begin()->first +
                      std::string(kBootstrapSuffix) + ": not a member named in federation.clusters");
  if (config.map_cluster &&
      std::none_of(config.members.begin(), config.members.end(), [&](const auto& m) { return m.name == *config.map_cluster; }))
    throw ConfigError("Invalid configuration federation.map.cluster: " + *config.map_cluster +
                      " is not a member named in federation.clusters");
  if (config.map_cluster && config.endpoints.empty())
    throw ConfigError("Invalid configuration federation.endpoints: a shared map (federation.map.cluster) needs "
                      "every endpoint serving it listed, the same list on each (a move waits for all of them)");
  if (!config.endpoints.empty()) {
    if (std::none_of(config.endpoints.begin(), config.endpoints.end(), [&](const auto& e) { return e.id == config.node_id; }))
      throw ConfigError("Invalid configuration federation.endpoints: it does not name this endpoint (node.id " +
                        std::to_string(config.node_id) + ")");
    if (config.endpoints.size() > 1 && !config.map_cluster)
      throw ConfigError("Invalid configuration federation.endpoints: several endpoints serve one map only through "
                        "federation.map.cluster");
  }
  return config;
}

}  // namespace sluice::federation
