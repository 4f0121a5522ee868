// The metadata log's vocabulary: Kafka's metadata record types (the structs
// are generated from protocol/schema/*_record.schema, converted from Kafka's
// records/metadata JSON), and their framing in the log as Kafka frames them
// (unsigned varints: frame version 1, record type, record version; then the
// record). FORMATS.md describes the bytes.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "protocol/messages/broker_registration_change_record.h"
#include "protocol/messages/config_record.h"
#include "protocol/messages/feature_level_record.h"
#include "protocol/messages/fence_broker_record.h"
#include "protocol/messages/no_op_record.h"
#include "protocol/messages/partition_change_record.h"
#include "protocol/messages/partition_record.h"
#include "protocol/messages/producer_ids_record.h"
#include "protocol/messages/register_broker_record.h"
#include "protocol/messages/remove_topic_record.h"
#include "protocol/messages/topic_record.h"
#include "protocol/messages/unfence_broker_record.h"
#include "protocol/messages/unregister_broker_record.h"

namespace sluice::controller {

using MetadataRecord =
    std::variant<protocol::RegisterBrokerRecord, protocol::UnregisterBrokerRecord, protocol::FenceBrokerRecord,
                 protocol::UnfenceBrokerRecord, protocol::BrokerRegistrationChangeRecord, protocol::TopicRecord,
                 protocol::PartitionRecord, protocol::PartitionChangeRecord, protocol::ConfigRecord,
                 protocol::RemoveTopicRecord, protocol::ProducerIdsRecord, protocol::NoOpRecord,
                 protocol::FeatureLevelRecord>;

// ConfigRecord's resource types (Kafka's ConfigResource.Type).
inline constexpr int8_t kTopicResource = 2;
inline constexpr int8_t kBrokerResource = 4;
inline constexpr int8_t kGroupResource = 32;

// A record framed for the log, at the newest version of its type.
std::string encode_record(const MetadataRecord& record);
// Throws protocol::DecodeError on a frame, type or version this build does not
// know, or trailing bytes.
MetadataRecord decode_record(std::string_view bytes);

// The record type's name, for log lines and errors.
std::string_view record_name(const MetadataRecord& record);

}  // namespace sluice::controller
