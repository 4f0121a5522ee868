#include "broker/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::broker {
namespace {

TEST(BrokerConfigTest, EmbeddedDefaultsMakeASingleNodeCluster) {
  BrokerConfig c = BrokerConfig::load(std::nullopt, {});
  EXPECT_EQ(c.node_id(), 1);
  ASSERT_EQ(c.listeners().size(), 1u);
  EXPECT_EQ(c.listeners()[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners()[0].port, 9092);
  EXPECT_EQ(c.log_dir(), "./data");
  EXPECT_EQ(c.get_long("message.max.bytes"), 1048588);
  EXPECT_TRUE(c.get_bool("auto.create.topics.enable"));
  EXPECT_EQ(c.source("num.partitions"), ConfigSource::kDefault);
}

TEST(BrokerConfigTest, FileThenOverridesWithKafkaSyntax) {
  auto path = std::filesystem::temp_directory_path() / ("sluice-config-" + std::to_string(::getpid()) + ".properties");
  {
    std::ofstream f(path);
    f << "# comment\n! also a comment\n\nnode.id=3\nnum.partitions : 4\nlisteners=PLAINTEXT://localhost:9093,\\\n"
         "  INTERNAL://127.0.0.1:9094\nlog.dirs /tmp/a,/tmp/b\n";
  }
  BrokerConfig c = BrokerConfig::load(path.string(), {"num.partitions=6"});
  std::filesystem::remove(path);
  EXPECT_EQ(c.node_id(), 3);
  EXPECT_EQ(c.get_int("num.partitions"), 6);
  EXPECT_EQ(c.source("num.partitions"), ConfigSource::kStaticBroker);
  ASSERT_EQ(c.listeners().size(), 2u);
  EXPECT_EQ(c.listeners()[1].name, "INTERNAL");
  EXPECT_EQ(c.listeners()[1].port, 9094);
  EXPECT_EQ(c.advertised_listeners()[0].host, "localhost");
  EXPECT_EQ(c.log_dir(), "/tmp/a");
}

// The error start-up would stop with, or "accepted".
std::string message_of(const std::vector<std::string>& overrides) {
  try {
    BrokerConfig::load(std::nullopt, overrides);
  } catch (const ConfigError& e) {
    return std::string(e.what());
  }
  return std::string("accepted");
}

TEST(BrokerConfigTest, RejectsUnknownKeysAndBadValuesNamingTheKey) {
  EXPECT_NE(message_of({"no.such.key=1"}).find("no.such.key"), std::string::npos);
  EXPECT_NE(message_of({"num.partitions=many"}).find("num.partitions"), std::string::npos);
  EXPECT_NE(message_of({"num.partitions=0"}).find("num.partitions"), std::string::npos);
  EXPECT_NE(message_of({"auto.create.topics.enable=yes"}).find("auto.create.topics.enable"), std::string::npos);
  EXPECT_NE(message_of({"listeners=127.0.0.1:9092"}).find("listeners"), std::string::npos);
  EXPECT_NE(message_of({"listeners=PLAINTEXT://127.0.0.1:99999"}).find("listeners"), std::string::npos);
  EXPECT_NE(message_of({"node.id=2", "broker.id=3"}).find("broker.id"), std::string::npos);
  EXPECT_NE(message_of({"message.max.bytes=99999999999"}).find("message.max.bytes"), std::string::npos);
  EXPECT_NE(message_of({"novalue"}).find("novalue"), std::string::npos);
  EXPECT_EQ(message_of({"node.id=2", "broker.id=2"}), "accepted");
}

// KRaft's rules for roles, voters and listeners stop start-up naming the key.
TEST(BrokerConfigTest, ChecksRolesVotersAndListeners) {
  const std::string voters = "controller.quorum.voters=1@127.0.0.1:9093";
  const std::string names = "controller.listener.names=CONTROLLER";
  // No configuration: a standalone single node.
  EXPECT_TRUE(BrokerConfig::load(std::nullopt, {}).standalone());
  EXPECT_NE(message_of({"process.roles=broker"}).find("controller.quorum.voters"), std::string::npos);
  EXPECT_NE(message_of({"process.roles=controller"}).find("controller.quorum.voters"), std::string::npos);
  EXPECT_NE(message_of({"process.roles=worker"}).find("process.roles"), std::string::npos);
  EXPECT_NE(message_of({voters}).find("controller.listener.names"), std::string::npos);
  EXPECT_NE(message_of({"controller.quorum.voters=1@h"}).find("controller.quorum.voters"), std::string::npos);
  EXPECT_NE(message_of({"controller.quorum.voters=1@h:1,1@h:2"}).find("controller.quorum.voters"), std::string::npos);
  // A combined node must be a voter, with its controller listener.
  EXPECT_NE(message_of({voters, names, "node.id=2"}).find("controller.quorum.voters"), std::string::npos);
  EXPECT_NE(message_of({voters, names}).find("listeners"), std::string::npos);
  const std::string combined_listeners = "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093";
  BrokerConfig combined = BrokerConfig::load(std::nullopt, {voters, names, combined_listeners});
  EXPECT_FALSE(combined.standalone());
  EXPECT_EQ(combined.controller_listeners().size(), 1u);
  EXPECT_EQ(combined.advertised_listeners().size(), 1u);  // clients are not told of the controller listener
  EXPECT_EQ(combined.advertised_listeners()[0].name, "PLAINTEXT");
  // A broker-only node must not be a voter nor have a controller listener.
  EXPECT_NE(message_of({voters, names, "process.roles=broker", "node.id=1"}).find("controller.quorum.voters"),
            std::string::npos);
  EXPECT_NE(message_of({voters, names, "process.roles=broker", "node.id=2", combined_listeners}).find("listeners"),
            std::string::npos);
  EXPECT_EQ(message_of({voters, names, "process.roles=broker", "node.id=2"}), "accepted");
  EXPECT_NE(message_of({voters, names, "process.roles=broker", "node.id=2", "inter.broker.listener.name=INTERNAL"})
                .find("inter.broker.listener.name"),
            std::string::npos);
  // A controller-only node has only controller listeners.
  EXPECT_NE(message_of({voters, names, "process.roles=controller", combined_listeners}).find("listeners"),
            std::string::npos);
  EXPECT_EQ(message_of({voters, names, "process.roles=controller", "listeners=CONTROLLER://127.0.0.1:9093"}), "accepted");
}

}  // namespace
}  // namespace sluice::broker
