#include "broker/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "protocol/error_codes.h"
#include "protocol/messages/api_keys.h"

namespace sluice::broker {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("sluice_requests_total")
                   .Help("Kafka requests read from connections, by API and version")
                   .Register(*registry_);
  request_seconds_ = &prometheus::BuildHistogram()
                          .Name("sluice_request_seconds")
                          .Help("Kafka requests' time by API and phase: queue (read to handling), handling "
                                "(to the answer ready, waits included), send (to the answer's last byte written)")
                          .Register(*registry_);
  connections_created_ = &prometheus::BuildCounter()
                              .Name("sluice_connections_created_total")
                              .Help("Connections accepted on the Kafka and controller listeners")
                              .Register(*registry_)
                              .Add({});
  connections_open_ = &prometheus::BuildGauge()
                           .Name("sluice_connections_open")
                           .Help("Connections open on the Kafka and controller listeners")
                           .Register(*registry_)
                           .Add({});
  requests_queued_ = &prometheus::BuildGauge()
                          .Name("sluice_requests_queued")
                          .Help("Requests read whose handler has not started")
                          .Register(*registry_)
                          .Add({});
  requests_in_flight_ = &prometheus::BuildGauge()
                             .Name("sluice_requests_in_flight")
                             .Help("Requests read whose answer is not written yet")
                             .Register(*registry_)
                             .Add({});
  received_bytes_ = &prometheus::BuildCounter()
                         .Name("sluice_network_received_bytes_total")
                         .Help("Bytes read from Kafka and controller connections")
                         .Register(*registry_)
                         .Add({});
  sent_bytes_ = &prometheus::BuildCounter()
                     .Name("sluice_network_sent_bytes_total")
                     .Help("Bytes written to Kafka and controller connections")
                     .Register(*registry_)
                     .Add({});
  request_errors_ = &prometheus::BuildCounter()
                         .Name("sluice_request_errors_total")
                         .Help("Error codes other than NONE in answers, by API and error")
                         .Register(*registry_);
  topic_bytes_in_ = &prometheus::BuildCounter()
                         .Name("sluice_topic_bytes_in_total")
                         .Help("Bytes of record batches produced to partitions this node leads")
                         .Register(*registry_);
  topic_records_in_ = &prometheus::BuildCounter()
                           .Name("sluice_topic_records_in_total")
                           .Help("Records produced to partitions this node leads")
                           .Register(*registry_);
  topic_bytes_out_ = &prometheus::BuildCounter()
                          .Name("sluice_topic_bytes_out_total")
                          .Help("Bytes of record batches sent to consumers (not followers)")
                          .Register(*registry_);
  topic_records_out_ = &prometheus::BuildCounter()
                            .Name("sluice_topic_records_out_total")
                            .Help("Offsets the answers to consumers' fetches span")
                            .Register(*registry_);
  flushed_bytes_ = &prometheus::BuildCounter()
                        .Name("sluice_flushed_bytes_total")
                        .Help("Bytes the group-commit thread's syncs made durable (how much each synced file grew)")
                        .Register(*registry_)
                        .Add({});
  // 50 us to 2.5 s: a page-cache flush on an SSD to a stalled disk.
  fsync_seconds_ = &prometheus::BuildHistogram()
                        .Name("sluice_fsync_seconds")
                        .Help("Time of each fdatasync/fsync of the group-commit thread")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                                          0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                          0.25, 0.5, 1, 2.5});
  segment_roll_seconds_ = &prometheus::BuildHistogram()
                               .Name("sluice_segment_roll_seconds")
                               .Help("Time of each log segment roll of an append (files created, the old "
                                     "segment's indexes written), on the network thread")
                               .Register(*registry_)
                               .Add({}, prometheus::Histogram::BucketBoundaries{0.00001, 0.000025, 0.00005, 0.0001,
                                                                                0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                                0.01, 0.025, 0.05, 0.1, 0.25});
}

Metrics::~Metrics() = default;

size_t Metrics::slot_of(int16_t api_key) {
  return api_key >= 0 && static_cast<size_t>(api_key) < kApiSlots ? static_cast<size_t>(api_key) : kApiSlots;
}

namespace {

std::string api_name(size_t slot, size_t api_slots) {
  const protocol::ApiInfo* api = slot < api_slots ? protocol::find_api(static_cast<int16_t>(slot)) : nullptr;
  return api ? api->name : "unknown";
}

}  // namespace

void Metrics::request_received(int16_t api_key, int16_t api_version) {
  const size_t slot = slot_of(api_key);
  const size_t version = api_version >= 0 && static_cast<size_t>(api_version) < kVersionSlots - 1
                             ? static_cast<size_t>(api_version)
                             : kVersionSlots - 1;
  prometheus::Counter*& series = request_series_[slot][version];
  if (!series)
    series = &requests_->Add({{"api", api_name(slot, kApiSlots)},
                              {"version", version == kVersionSlots - 1 ? "other" : std::to_string(version)}});
  series->Increment();
}

void Metrics::request_done(int16_t api_key, double queue_s, double handling_s, double send_s) {
  const size_t slot = slot_of(api_key);
  Phases& phases = request_phases_[slot];
  if (!phases.queue) {
    // 100 us to 10 s: a produce on the loopback to a long poll's wait.
    static const prometheus::Histogram::BucketBoundaries kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                                  0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                                                  5,      10};
    const std::string name = api_name(slot, kApiSlots);
    phases.queue = &request_seconds_->Add({{"api", name}, {"phase", "queue"}}, kBuckets);
    phases.handling = &request_seconds_->Add({{"api", name}, {"phase", "handling"}}, kBuckets);
    phases.send = &request_seconds_->Add({{"api", name}, {"phase", "send"}}, kBuckets);
  }
  phases.queue->Observe(queue_s);
  phases.handling->Observe(handling_s);
  phases.send->Observe(send_s);
}

void Metrics::connection_opened() {
  connections_created_->Increment();
  connections_open_->Increment();
}

void Metrics::connection_closed() { connections_open_->Decrement(); }

void Metrics::request_error(int16_t api_key, int16_t error_code, uint32_t count) {
  const size_t slot = slot_of(api_key);
  const uint32_t key = static_cast<uint32_t>(slot) << 16 | static_cast<uint16_t>(error_code);
  auto it = request_error_series_.find(key);
  if (it == request_error_series_.end()) {
    const std::string name = api_name(slot, kApiSlots);
    it = request_error_series_
             .emplace(key, &request_errors_->Add(
                               {{"api", name}, {"error", protocol::error_name(static_cast<protocol::ErrorCode>(error_code))}}))
             .first;
  }
  it->second->Increment(count);
}

TopicCounters& Metrics::topic(const std::string& name) {
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second;
  TopicCounters& c = topics_[name];
  c.bytes_in = &topic_bytes_in_->Add({{"topic", name}});
  c.records_in = &topic_records_in_->Add({{"topic", name}});
  c.bytes_out = &topic_bytes_out_->Add({{"topic", name}});
  c.records_out = &topic_records_out_->Add({{"topic", name}});
  return c;
}

void Metrics::forget_topic(const std::string& name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return;
  topic_bytes_in_->Remove(it->second.bytes_in);
  topic_records_in_->Remove(it->second.records_in);
  topic_bytes_out_->Remove(it->second.bytes_out);
  topic_records_out_->Remove(it->second.records_out);
  topics_.erase(it);
}

void Metrics::observe_fsync(double seconds) { fsync_seconds_->Observe(seconds); }
void Metrics::observe_segment_roll(double seconds) { segment_roll_seconds_->Observe(seconds); }

std::string Metrics::serialize(const std::vector<prometheus::MetricFamily>& extra) const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  families.insert(families.end(), extra.begin(), extra.end());
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace sluice::broker
