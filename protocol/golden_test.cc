// Golden-byte tests: encodings derived by hand from the Kafka protocol guide
// (kafka.apache.org/protocol), so the generated codecs are checked against
// Kafka's format and not only against themselves.
#include <gtest/gtest.h>

#include <string>

#include "protocol/messages/api_keys.h"
#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/request_header.h"
#include "protocol/messages/response_header.h"
#include "protocol/wire.h"

namespace sluice::protocol {
namespace {

using namespace std::string_literals;

template <typename T>
std::string Encode(const T& m, int16_t v) {
  Writer w;
  m.encode(w, v);
  return w.buffer();
}

template <typename T>
T Decode(std::string_view bytes, int16_t v) {
  T m;
  Reader r(bytes);
  m.decode(r, v);
  EXPECT_EQ(r.remaining(), 0u);
  return m;
}

TEST(Golden, RequestHeaderV2KeepsClassicClientId) {
  // ApiVersions v3 request header: api_key=18, api_version=3, correlation_id=1,
  // client_id "rdkafka" as an INT16-length string (never compact), then an
  // empty tagged-field section.
  RequestHeader h;
  h.request_api_key = 18;
  h.request_api_version = 3;
  h.correlation_id = 1;
  h.client_id = "rdkafka";
  const std::string expected = "\x00\x12" "\x00\x03" "\x00\x00\x00\x01" "\x00\x07" "rdkafka" "\x00"s;
  EXPECT_EQ(Encode(h, 2), expected);
  EXPECT_EQ(Decode<RequestHeader>(expected, 2), h);
  // v1: same without the tag section; null client id is int16 -1.
  h.client_id = std::nullopt;
  EXPECT_EQ(Encode(h, 1), "\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff"s);
  // v0: no client id at all.
  EXPECT_EQ(Encode(h, 0), "\x00\x12\x00\x03\x00\x00\x00\x01"s);
}

TEST(Golden, ResponseHeader) {
  ResponseHeader h;
  h.correlation_id = 0x01020304;
  EXPECT_EQ(Encode(h, 0), "\x01\x02\x03\x04"s);
  EXPECT_EQ(Encode(h, 1), "\x01\x02\x03\x04\x00"s);
}

TEST(Golden, ApiVersionsV3RequestBody) {
  // ClientSoftwareName / ClientSoftwareVersion are COMPACT_STRINGs (uvarint N+1),
  // followed by an empty tag section.
  ApiVersionsRequest req;
  req.client_software_name = "librdkafka";
  req.client_software_version = "2.0.2";
  const std::string expected = "\x0b" "librdkafka" "\x06" "2.0.2" "\x00"s;
  EXPECT_EQ(Encode(req, 3), expected);
  EXPECT_EQ(Decode<ApiVersionsRequest>(expected, 3), req);
  // v0-v2 bodies are empty.
  EXPECT_EQ(Encode(req, 0), "");
}

TEST(Golden, ApiVersionsResponseV0AndV3) {
  ApiVersionsResponse resp;
  resp.error_code = 0;
  ApiVersionsResponse::ApiVersion av;
  av.api_key = 18;
  av.min_version = 0;
  av.max_version = 3;
  resp.api_keys.push_back(av);
  // v0: error_code int16, ARRAY(int32 count) of (int16,int16,int16).
  EXPECT_EQ(Encode(resp, 0), "\x00\x00" "\x00\x00\x00\x01" "\x00\x12\x00\x00\x00\x03"s);
  // v3: compact array (count+1), per-element tag section, throttle_time_ms,
  // then the top-level tag section. FinalizedFeaturesEpoch (tag 1) is written
  // only when not the default -1.
  resp.throttle_time_ms = 0;
  EXPECT_EQ(Encode(resp, 3), "\x00\x00" "\x02" "\x00\x12\x00\x00\x00\x03\x00" "\x00\x00\x00\x00" "\x00"s);
  resp.finalized_features_epoch = 5;
  const std::string with_tag = "\x00\x00" "\x02" "\x00\x12\x00\x00\x00\x03\x00" "\x00\x00\x00\x00"
                               "\x01" "\x01\x08" "\x00\x00\x00\x00\x00\x00\x00\x05"s;
  EXPECT_EQ(Encode(resp, 3), with_tag);
  EXPECT_EQ(Decode<ApiVersionsResponse>(with_tag, 3), resp);
}

TEST(Golden, MetadataV0Request) {
  // v0: topics ARRAY(int32 count) of STRING(int16 length).
  MetadataRequest req;
  MetadataRequest::MetadataRequestTopic t;
  t.name = "test";
  req.topics = std::vector<MetadataRequest::MetadataRequestTopic>{t};
  const std::string expected = "\x00\x00\x00\x01" "\x00\x04" "test"s;
  EXPECT_EQ(Encode(req, 0), expected);
  EXPECT_EQ(Decode<MetadataRequest>(expected, 0), req);
}

TEST(Golden, MetadataV9RequestAllTopics) {
  // v9 (first flexible): topics COMPACT_NULLABLE_ARRAY (0 = null = all topics),
  // allow_auto_topic_creation, include_cluster_authorized_operations,
  // include_topic_authorized_operations, tag section.
  MetadataRequest req;
  req.topics = std::nullopt;
  req.allow_auto_topic_creation = true;
  const std::string expected = "\x00\x01\x00\x00\x00"s;
  EXPECT_EQ(Encode(req, 9), expected);
  EXPECT_EQ(Decode<MetadataRequest>(expected, 9), req);
  // v1..v8 null topics = int32 -1.
  EXPECT_EQ(Encode(req, 1), "\xff\xff\xff\xff"s);
}

TEST(Golden, ProduceV3RequestRecordsAreViews) {
  // transactional_id NULLABLE_STRING, acks int16, timeout int32, topic array,
  // partition array, records as int32-length bytes.
  const std::string expected = "\xff\xff" "\xff\xff" "\x00\x00\x75\x30" "\x00\x00\x00\x01" "\x00\x01" "t"
                               "\x00\x00\x00\x01" "\x00\x00\x00\x02" "\x00\x00\x00\x03" "abc"s;
  ProduceRequest req = Decode<ProduceRequest>(expected, 3);
  EXPECT_EQ(req.transactional_id, std::nullopt);
  EXPECT_EQ(req.acks, -1);
  EXPECT_EQ(req.timeout_ms, 30000);
  ASSERT_EQ(req.topic_data.size(), 1u);
  EXPECT_EQ(req.topic_data[0].name, "t");
  ASSERT_EQ(req.topic_data[0].partition_data.size(), 1u);
  const auto& p = req.topic_data[0].partition_data[0];
  EXPECT_EQ(p.index, 2);
  ASSERT_TRUE(p.records.has_value());
  EXPECT_EQ(p.records->bytes(), "abc");
  EXPECT_EQ(p.records->bytes().data(), expected.data() + expected.size() - 3);  // a view, not a copy
  EXPECT_EQ(Encode(req, 3), expected);
}

TEST(Golden, ApiKeysRegistry) {
  const ApiInfo* mv = find_api(3);
  ASSERT_NE(mv, nullptr);
  EXPECT_STREQ(mv->name, "Metadata");
  EXPECT_EQ(mv->min_version, MetadataRequest::kMinVersion);
  EXPECT_EQ(mv->max_version, MetadataRequest::kMaxVersion);
  EXPECT_EQ(mv->first_flexible_version, 9);
  EXPECT_EQ(find_api(12345), nullptr);
  EXPECT_EQ(request_header_version(18, 3), 2);
  EXPECT_EQ(request_header_version(18, 2), 1);
  EXPECT_EQ(request_header_version(18, 99), 2);  // unknown higher version still parses
  EXPECT_EQ(response_header_version(18, 3), 0);   // KIP-511: always v0
  EXPECT_EQ(response_header_version(3, 9), 1);
  EXPECT_EQ(response_header_version(3, 8), 0);
  EXPECT_EQ(request_header_version(17, 1), 1);   // SaslHandshake: never flexible
  for (const ApiInfo& a : kApis) EXPECT_EQ(find_api(a.key), &a);
}

}  // namespace
}  // namespace sluice::protocol
