// Broker configuration with Kafka's key names, from a server.properties-style
// file and `--override key=value` flags. Unknown keys and bad values are
// rejected at start-up with a message naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "controller/topic_config.h"

namespace sluice::broker {

// Kafka's rack-aware replica selector (KIP-392), the replica.selector.class Sluice implements.
inline constexpr const char* kRackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

using controller::ConfigSource;
using controller::ConfigType;

struct ConfigDefinition {
  const char* name;
  ConfigType type;
  const char* default_value;  // nullptr: no default (null)
  int64_t min = INT64_MIN;    // numeric bounds, inclusive
  int64_t max = INT64_MAX;
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Listener {
  std::string name;  // e.g. PLAINTEXT
  std::string host;
  uint16_t port = 0;
};

// One of controller.quorum.voters: id@host:port.
struct Voter {
  int32_t id;
  std::string host;
  uint16_t port;
};

class BrokerConfig {
 public:
  // Every broker key Sluice understands, in name order.
  static const std::vector<ConfigDefinition>& definitions();
  static const ConfigDefinition* find_definition(std::string_view name);

  // Builds the configuration from an optional properties file and overrides
  // (later ones win). Throws ConfigError naming the offending key.
  static BrokerConfig load(const std::optional<std::string>& file, const std::vector<std::string>& overrides);

  // Raw value (nullopt when null) and its source.
  std::optional<std::string> value(std::string_view name) const;
  ConfigSource source(std::string_view name) const;

  int64_t get_long(std::string_view name) const;
  int32_t get_int(std::string_view name) const { return static_cast<int32_t>(get_long(name)); }
  bool get_bool(std::string_view name) const;
  std::string get_string(std::string_view name) const;

  int32_t node_id() const { return get_int("node.id"); }
  std::vector<Listener> listeners() const;
  // Broker listeners clients are told about (the non-controller listeners when unset).
  std::vector<Listener> advertised_listeners() const;
  // process.roles has `role` (broker, controller).
  bool has_role(std::string_view role) const;
  std::vector<Voter> controller_quorum_voters() const;
  std::vector<std::string> controller_listener_names() const;
  // Listeners split by whether controller.listener.names names them.
  std::vector<Listener> broker_listeners() const;
  std::vector<Listener> controller_listeners() const;
  // No controller.quorum.voters: a single node whose controller serves only itself, in-process.
  bool standalone() const { return controller_quorum_voters().empty(); }
  // Share groups (group.share.enable): on by default on a single node; a
  // cluster serves them when it is set (their state then lives in __share_group_state).
  bool share_groups_enabled() const {
    return source("group.share.enable") == ConfigSource::kStaticBroker ? get_bool("group.share.enable") : standalone();
  }
  std::string log_dir() const;                          // the first of log.dirs
  // The admin HTTP server's address (admin.listeners); none when it is empty.
  std::optional<Listener> admin_listener() const;

 private:
  void check_roles() const;
  void set(std::string_view name, std::string_view value);  // validates
  std::map<std::string, std::string, std::less<>> explicit_;
};

// The key-value pairs of a Java properties file (if any) and then of the
// `key=value` overrides, in order (later ones win when applied in order).
// Throws ConfigError for an unreadable file or an override without '='.
std::vector<std::pair<std::string, std::string>> read_properties(const std::optional<std::string>& file,
                                                                   const std::vector<std::string>& overrides);

// Parses "NAME://host:port,..." as Kafka's listeners config does.
std::vector<Listener> parse_listeners(std::string_view value, std::string_view key);

}  // namespace sluice::broker
