// The broker's Prometheus metrics (prometheus-cpp), served by the admin HTTP
// server's GET /metrics. Names follow Prometheus's conventions: the `sluice_`
// prefix, base units, `_total` for counters, and label sets bounded by the
// code (an API name, never a client-chosen string).
//
// The network thread updates them (prometheus-cpp's counters and gauges are
// atomics: no lock on the request path); the admin thread collects them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace sluice::broker {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A request read from a connection, by API key (any key: unknown ones count under "unknown").
  void request_received(int16_t api_key);
  void connection_opened();
  void connection_closed();

  // Prometheus's text exposition format (version 0.0.4) of every metric.
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  // Indexed by API key; the last slot counts keys out of range or unknown.
  static constexpr size_t kApiSlots = 128;
  std::array<prometheus::Counter*, kApiSlots + 1> requests_{};
  prometheus::Counter* connections_created_ = nullptr;
  prometheus::Gauge* connections_open_ = nullptr;
};

}  // namespace sluice::broker
