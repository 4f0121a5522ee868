#include "broker/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
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

void Metrics::request_received(int16_t api_key) {
  const size_t slot = api_key >= 0 && static_cast<size_t>(api_key) < kApiSlots ? static_cast<size_t>(api_key) : kApiSlots;
  requests_[slot]->Increment();
}

void Metrics::connection_opened() {
  connections_created_->Increment();
  connections_open_->Increment();
}

void Metrics::connection_closed() { connections_open_->Decrement(); }

std::string Metrics::serialize() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

}  // namespace sluice::broker
