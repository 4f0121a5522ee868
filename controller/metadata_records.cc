#include "controller/metadata_records.h"

namespace sluice::controller {
namespace {

// Kafka's MetadataRecordSerde frame version.
constexpr uint32_t kFrameVersion = 1;

template <size_t I = 0>
MetadataRecord decode_alternative(int16_t type, int16_t version, protocol::Reader& r) {
  if constexpr (I == std::variant_size_v<MetadataRecord>) {
    throw protocol::DecodeError("unknown metadata record type " + std::to_string(type));
  } else {
    using T = std::variant_alternative_t<I, MetadataRecord>;
    if (T::kApiKey != type) return decode_alternative<I + 1>(type, version, r);
    if (version < T::kMinVersion || version > T::kMaxVersion)
      throw protocol::DecodeError("unknown version " + std::to_string(version) + " of metadata record type " +
                                  std::to_string(type));
    T record;
    record.decode(r, version);
    return record;
  }
}

}  // namespace

std::string encode_record(const MetadataRecord& record) {
  protocol::Writer w;
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        w.write_uvarint(kFrameVersion);
        w.write_uvarint(static_cast<uint32_t>(T::kApiKey));
        w.write_uvarint(static_cast<uint32_t>(T::kMaxVersion));
        r.encode(w, T::kMaxVersion);
      },
      record);
  return std::move(w.buffer());
}

MetadataRecord decode_record(std::string_view bytes) {
  protocol::Reader r(bytes);
  if (r.read_uvarint() != kFrameVersion) throw protocol::DecodeError("unknown metadata record frame version");
  const uint32_t type = r.read_uvarint();
  const uint32_t version = r.read_uvarint();
  if (type > INT16_MAX || version > INT16_MAX) throw protocol::DecodeError("metadata record type or version out of range");
  MetadataRecord record = decode_alternative(static_cast<int16_t>(type), static_cast<int16_t>(version), r);
  if (r.remaining() != 0) throw protocol::DecodeError("trailing bytes after a metadata record");
  return record;
}

std::string_view record_name(const MetadataRecord& record) {
  static constexpr std::string_view kNames[] = {
      "RegisterBrokerRecord", "UnregisterBrokerRecord", "FenceBrokerRecord",     "UnfenceBrokerRecord",
      "BrokerRegistrationChangeRecord", "TopicRecord", "PartitionRecord",   "PartitionChangeRecord",
      "ConfigRecord",         "RemoveTopicRecord",      "ProducerIdsRecord",     "NoOpRecord",
      "FeatureLevelRecord"};
  static_assert(std::size(kNames) == std::variant_size_v<MetadataRecord>);
  return kNames[record.index()];
}

}  // namespace sluice::controller
