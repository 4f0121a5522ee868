#include "federation/federation_config.h"

#include <gtest/gtest.h>

namespace sluice::federation {
namespace {

FederationConfig load(const std::vector<std::string>& overrides) { return FederationConfig::load(std::nullopt, overrides); }

std::string error_of(const std::vector<std::string>& overrides) {
  try {
    load(overrides);
  } catch (const broker::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(FederationConfigTest, ReadsMembersInOrder) {
  const auto config = load({"federation.clusters=east, west", "federation.cluster.west.bootstrap.servers=h2:9093",
                            "federation.cluster.east.bootstrap.servers=h1:9092,h1:9094",
                            "listeners=PLAINTEXT://127.0.0.1:9300", "log.dirs=/tmp/x", "node.id=7",
                            "federation.member.timeout.ms=1500"});
  ASSERT_EQ(config.members.size(), 2u);
  EXPECT_EQ(config.members[0].name, "east");
  ASSERT_EQ(config.members[0].bootstrap.size(), 2u);
  EXPECT_EQ(config.members[0].bootstrap[1].port, 9094);
  EXPECT_EQ(config.members[1].bootstrap[0].host, "h2");
  EXPECT_EQ(config.listener.port, 9300);
  EXPECT_EQ(config.advertised.port, 9300);  // advertised defaults to the listener
  EXPECT_EQ(config.data_dir, "/tmp/x");
  EXPECT_EQ(config.node_id, 7);
  EXPECT_EQ(config.member_timeout_ms, 1500);
  EXPECT_TRUE(config.auto_create_topics);  // Kafka's defaults
  EXPECT_EQ(config.auto_create_partitions, 1);
  const auto changed = load({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1",
                             "auto.create.topics.enable=false", "num.partitions=6"});
  EXPECT_FALSE(changed.auto_create_topics);
  EXPECT_EQ(changed.auto_create_partitions, 6);
}

TEST(FederationConfigTest, NamesTheKeyAtFault) {
  EXPECT_NE(error_of({}).find("federation.clusters"), std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a"}).find("federation.cluster.a.bootstrap.servers"), std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1",
                      "federation.cluster.b.bootstrap.servers=h:2"})
                .find("federation.cluster.b.bootstrap.servers"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=nohost"}).find("host:port"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:99999"}).find("65535"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a b", "federation.cluster.a b.bootstrap.servers=h:1"}).find("member names"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a,a", "federation.cluster.a.bootstrap.servers=h:1"}).find("twice"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1",
                      "listeners=PLAINTEXT://0.0.0.0:9192"})
                .find("advertised.listeners"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1", "node.id=4294967295"})
                .find("node.id"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1", "log.retention.ms=3"})
                .find("Unknown configuration 'log.retention.ms'"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1", "num.partitions=0"})
                .find("num.partitions"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1",
                      "auto.create.topics.enable=yes"})
                .find("auto.create.topics.enable"),
            std::string::npos);
  EXPECT_NE(error_of({"federation.clusters=a", "federation.cluster.a.bootstrap.servers=h:1",
                      "federation.member.timeout.ms=10"})
                .find("federation.member.timeout.ms"),
            std::string::npos);
}

TEST(FederationConfigTest, SeveralEndpointsShareAMapOnAMember) {
  const std::vector<std::string> base{"federation.clusters=a,b", "federation.cluster.a.bootstrap.servers=h:1",
                                      "federation.cluster.b.bootstrap.servers=h:2", "node.id=2"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), base.begin(), base.end());
    return more;
  };
  const auto config = load(with({"federation.map.cluster=b", "federation.endpoints=1@e1:9192, 2@e2:9193"}));
  EXPECT_EQ(config.map_cluster, std::optional<std::string>("b"));
  ASSERT_EQ(config.endpoints.size(), 2u);
  EXPECT_EQ(config.endpoints[1].id, 2);
  EXPECT_EQ(config.endpoints[1].address.host, "e2");
  EXPECT_EQ(config.endpoints[1].address.port, 9193);
  EXPECT_FALSE(load(base).map_cluster.has_value());  // the map is this endpoint's own
  EXPECT_NE(error_of(with({"federation.map.cluster=c"})).find("federation.map.cluster"), std::string::npos);
  EXPECT_NE(error_of(with({"federation.map.cluster=a", "federation.endpoints=1@e1:1,3@e3:3"})).find("node.id 2"),
            std::string::npos);
  EXPECT_NE(error_of(with({"federation.endpoints=1@e1:1,2@e2:2"})).find("federation.map.cluster"), std::string::npos);
  EXPECT_NE(error_of(with({"federation.map.cluster=a"})).find("federation.endpoints"), std::string::npos);
  EXPECT_NE(error_of(with({"federation.map.cluster=a", "federation.endpoints=2@e2:2,2@e3:3"})).find("twice"),
            std::string::npos);
  EXPECT_NE(error_of(with({"federation.map.cluster=a", "federation.endpoints=e2:2"})).find("id@host:port"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::federation
