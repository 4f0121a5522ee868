// The broker's Prometheus metrics (prometheus-cpp), served by the admin HTTP
// server's GET /metrics. Names follow Prometheus's conventions: the `sluice_`
// prefix, base units, `_total` for counters, and label sets bounded by the
// code (an API name, never a client-chosen string).
//
// The network thread updates them (prometheus-cpp's counters and gauges are
// atomics: no lock on the request path); the admin thread collects them. The
// state gauges (partitions, groups, the controller) are not here: the admin
// server renders them from the broker's status snapshot (status_snapshot.h).
// METRICS.md lists every family.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>

namespace prometheus {
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace sluice::broker {

// A topic's traffic through this node (sluice_topic_*_total).
struct TopicCounters {
  prometheus::Counter* bytes_in = nullptr;
  prometheus::Counter* records_in = nullptr;
  prometheus::Counter* bytes_out = nullptr;
  prometheus::Counter* records_out = nullptr;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A request read from a connection, by API key and version (any: unknown
  // keys count under "unknown", versions past 30 under "other").
  void request_received(int16_t api_key, int16_t api_version);
  // A request answered (or done, when it has no answer), in seconds: from its
  // last byte read to its handler's start (queue), to its answer being ready
  // (handling: a fetch's long poll and an acks=all produce's wait included),
  // and to the answer's last byte written (send: behind earlier answers of
  // the connection, and the socket).
  void request_done(int16_t api_key, double queue_s, double handling_s, double send_s);
  void connection_opened();
  void connection_closed();
  // An error code other than NONE in an answer (RequestContext::respond counts them).
  void request_error(int16_t api_key, int16_t error_code, uint32_t count = 1);
  // A request read (a Pending made): queued until its handler starts, in flight until answered.
  void request_queued() {
    requests_queued_->Increment();
    requests_in_flight_->Increment();
  }
  void request_started() { requests_queued_->Decrement(); }
  void request_finished() { requests_in_flight_->Decrement(); }
  void bytes_received(size_t n) { received_bytes_->Increment(static_cast<double>(n)); }
  void bytes_sent(size_t n) { sent_bytes_->Increment(static_cast<double>(n)); }

  // Per-topic counters, made on a topic's first use; a Partition keeps a
  // pointer to its topic's (valid until forget_topic).
  TopicCounters& topic(const std::string& name);
  // The topic was deleted: its series go (its partitions are gone already).
  void forget_topic(const std::string& name);

  // The group-commit thread's fdatasync/fsync calls, and the bytes they made durable (thread-safe).
  void observe_fsync(double seconds);
  void flushed(uint64_t bytes) { flushed_bytes_->Increment(static_cast<double>(bytes)); }
  // A segment roll of an append: the new files made and the old one's indexes written, on the
  // network thread (issue 15 leaves them there; this says what they cost).
  void observe_segment_roll(double seconds);

  // Prometheus's text exposition format (version 0.0.4) of every metric,
  // followed by `extra` (the state gauges the admin server renders).
  std::string serialize(const std::vector<prometheus::MetricFamily>& extra = {}) const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  // Indexed by API key; the last slot counts keys out of range or unknown.
  static constexpr size_t kApiSlots = 128;
  static size_t slot_of(int16_t api_key);
  // sluice_requests_total{api, version}: made on first use, by [API slot][version slot].
  static constexpr size_t kVersionSlots = 32;  // the last one: "other"
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  std::array<std::array<prometheus::Counter*, kVersionSlots>, kApiSlots + 1> request_series_{};
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
  prometheus::Gauge* requests_queued_ = nullptr;
  prometheus::Gauge* requests_in_flight_ = nullptr;
  prometheus::Counter* received_bytes_ = nullptr;
  prometheus::Counter* sent_bytes_ = nullptr;
  // sluice_request_errors_total{api, error}: by (slot << 16 | code), made on first use.
  prometheus::Family<prometheus::Counter>* request_errors_ = nullptr;
  std::unordered_map<uint32_t, prometheus::Counter*> request_error_series_;
  prometheus::Family<prometheus::Counter>* topic_bytes_in_ = nullptr;
  prometheus::Family<prometheus::Counter>* topic_records_in_ = nullptr;
  prometheus::Family<prometheus::Counter>* topic_bytes_out_ = nullptr;
  prometheus::Family<prometheus::Counter>* topic_records_out_ = nullptr;
  std::unordered_map<std::string, TopicCounters> topics_;
  prometheus::Histogram* fsync_seconds_ = nullptr;
  prometheus::Histogram* segment_roll_seconds_ = nullptr;
  prometheus::Counter* flushed_bytes_ = nullptr;
};

}  // namespace sluice::broker
