// sluice: a message broker that speaks the Kafka wire protocol.
//
//   sluice server [--config FILE] [--override key=value ...]
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/log.h"
#include "broker/server.h"

namespace {

constexpr const char* kUsage =
    "usage: sluice server [--config FILE] [--override key=value ...]\n"
    "\n"
    "Runs a broker. Configuration keys are Kafka's (node.id, listeners, advertised.listeners,\n"
    "log.dirs, num.partitions, auto.create.topics.enable, message.max.bytes, ...). With no\n"
    "configuration, one process is a single-node cluster on 127.0.0.1:9092 with data in ./data.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::broker;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "server") {
    std::fprintf(stderr, "unknown command '%s'\n%s", args[0].c_str(), kUsage);
    return 2;
  }
  std::optional<std::string> config_file;
  std::vector<std::string> overrides;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    if (a == "--config") {
      config_file = value();
      if (!config_file) {
        std::fprintf(stderr, "--config needs a file\n");
        return 2;
      }
    } else if (a == "--override") {
      auto v = value();
      if (!v) {
        std::fprintf(stderr, "--override needs key=value\n");
        return 2;
      }
      overrides.push_back(*v);
    } else {
      std::fprintf(stderr, "unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  try {
    BrokerConfig config = BrokerConfig::load(config_file, overrides);
    return run_server(config);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "sluice: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "fatal: " << e.what());
    return 1;
  }
}
