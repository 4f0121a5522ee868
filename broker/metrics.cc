#include "broker/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "protocol/messages/api_keys.h"

namespace sluice::broker {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& requests = prometheus::BuildCounter()
                       .Name("sluice_requests_total")
                       .Help("Kafka requests read from connections, by API")
                       .Register(*registry_);
  // Every API the protocol knows has its series from the start (so a rate is
  // 0, not absent); keys it does not know share one.
  for (const protocol::ApiInfo& api : protocol::kApis)
    if (api.key >= 0 && static_cast<size_t>(api.key) < kApiSlots) requests_[api.key] = &requests.Add({{"api", api.name}});
  prometheus::Counter& unknown = requests.Add({{"api", "unknown"}});
  for (auto& slot : requests_)
    if (!slot) slot = &unknown;
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
}

Metrics::~Metrics() = default;

size_t Metrics::slot_of(int16_t api_key) {
  return api_key >= 0 && static_cast<size_t>(api_key) < kApiSlots ? static_cast<size_t>(api_key) : kApiSlots;
}

void Metrics::request_received(int16_t api_key) { requests_[slot_of(api_key)]->Increment(); }

void Metrics::request_done(int16_t api_key, double queue_s, double handling_s, double send_s) {
  const size_t slot = slot_of(api_key);
  Phases& phases = request_phases_[slot];
  if (!phases.queue) {
    // 100 us to 10 s: a produce on the loopback to a long poll's wait.
    static const prometheus::Histogram::BucketBoundaries kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                                  0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                                                  5,      10};
    const protocol::ApiInfo* api = slot < kApiSlots ? protocol::find_api(static_cast<int16_t>(slot)) : nullptr;
    const std::string name = api ? api->name : "unknown";
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

std::string Metrics::serialize() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

}  // namespace sluice::broker
