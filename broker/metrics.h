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
class Histogram;
class Registry;
template <typename T>
class Family;
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
  // A request answered (or done, when it has no answer), in seconds: from its
  // last byte read to its handler's start (queue), to its answer being ready
  // (handling: a fetch's long poll and an acks=all produce's wait included),
  // and to the answer's last byte written (send: behind earlier answers of
  // the connection, and the socket).
  void request_done(int16_t api_key, double queue_s, double handling_s, double send_s);
  void connection_opened();
  void connection_closed();

  // Prometheus's text exposition format (version 0.0.4) of every metric.
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  // Indexed by API key; the last slot counts keys out of range or unknown.
  static constexpr size_t kApiSlots = 128;
  static size_t slot_of(int16_t api_key);
  std::array<prometheus::Counter*, kApiSlots + 1> requests_{};
  // sluice_request_seconds{api, phase}: made on an API's first request, so
  // that only the APIs in use have series (3 phases x 17 buckets each).
  prometheus::Family<prometheus::Histogram>* request_seconds_ = nullptr;
  struct Phases {
    prometheus::Histogram* queue = nullptr;
    prometheus::Histogram* handling = nullptr;
    prometheus::Histogram* send = nullptr;
  };
  std::array<Phases, kApiSlots + 1> request_phases_{};
  prometheus::Counter* connections_created_ = nullptr;
  prometheus::Gauge* connections_open_ = nullptr;
};

}  // namespace sluice::broker
