// sluice: a message broker that speaks the Kafka wire protocol.
//
//   sluice server [--config FILE] [--override key=value ...]
//   sluice federation [--config FILE] [--override key=value ...]
//   sluice metadata-image LOG_DIR
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "broker/config.h"
#include "broker/log.h"
#include "broker/server.h"
#include "controller/metadata_image.h"
#include "controller/metadata_log.h"
#include "controller/metadata_records.h"
#include "federation/federation.h"
#include "storage/state_store.h"

namespace {

constexpr const char* kUsage =
    "usage: sluice server [--config FILE] [--override key=value ...]\n"
    "\n"
    "Runs a broker. Configuration keys are Kafka's (node.id, listeners, advertised.listeners,\n"
    "log.dirs, num.partitions, auto.create.topics.enable, message.max.bytes, ...). With no\n"
    "configuration, one process is a single-node cluster on 127.0.0.1:9092 with data in ./data.\n"
    "\n"
    "usage: sluice federation [--config FILE] [--override key=value ...]\n"
    "\n"
    "Runs a federation endpoint: one Kafka endpoint over several member clusters\n"
    "(federation.clusters, federation.cluster.<name>.bootstrap.servers; README.md,\n"
    "\"Federation\").\n"
    "\n"
    "usage: sluice metadata-image LOG_DIR\n"
    "\n"
    "Prints the metadata image a stopped node's copy of the metadata log replays to: its end\n"
    "offset and last epoch, then one line per record that rebuilds the image (type, hex).\n"
    "Two nodes that agree print the same.\n";

// The image of the metadata log kept in `log_dir`, as text.
int print_metadata_image(const std::string& log_dir) {
  auto store = sluice::storage::StateStore::open(log_dir + "/__sluice_state");
  sluice::controller::MetadataLog log(*store);
  sluice::controller::MetadataImage image;
  log.replay([&](std::string_view bytes) { image.apply(sluice::controller::decode_record(bytes)); });
  std::printf("end_offset %lld last_epoch %d\n", static_cast<long long>(log.end_offset()), log.last_epoch());
  static const char* kHex = "0123456789abcdef";
  for (const auto& record : image.to_records()) {
    const std::string bytes = sluice::controller::encode_record(record);
    std::string hex;
    for (unsigned char c : bytes) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    std::printf("%.*s %s\n", static_cast<int>(sluice::controller::record_name(record).size()),
                sluice::controller::record_name(record).data(), hex.c_str());
  }
  return 0;
}

// The process keeps the heap it has used instead of giving it back after each
// request: glibc otherwise maps a large buffer (a fetch answer, a replica fetch
// of up to replica.fetch.max.bytes) fresh for each request and trims the heap
// when it shrinks, and the kernel zeroes and faults in every page again. In a
// 3-broker RF=3 acks=all run (bench/cluster.py C1) that churn was 10-20% of the
// brokers' CPU. Resident memory stays at its high-water mark plus at most
// `trim_bytes` free.
void keep_heap(int mmap_bytes, int trim_bytes) {
  ::mallopt(M_MMAP_THRESHOLD, mmap_bytes);
  ::mallopt(M_TRIM_THRESHOLD, trim_bytes);
}

// Serves until SIGTERM or SIGINT.
int run_federation(sluice::federation::FederationConfig config) {
  keep_heap(64 << 20, 256 << 20);  // answers of several MiB each (federation/README.md)
  boost::asio::io_context io(1);
  sluice::federation::Federation federation(io, std::move(config));
  federation.start();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  SLUICE_LOG(kInfo, "sluice federation started on port " << federation.port());
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::broker;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "metadata-image" && args.size() == 2) {
    try {
      return print_metadata_image(args[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sluice: %s\n", e.what());
      return 1;
    }
  }
  if (args[0] != "server" && args[0] != "federation") {
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
    if (args[0] == "federation") return run_federation(sluice::federation::FederationConfig::load(config_file, overrides));
    BrokerConfig config = BrokerConfig::load(config_file, overrides);
    keep_heap(32 << 20, 64 << 20);
    return run_server(config);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "sluice: configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "fatal: " << e.what());
    return 1;
  }
}
