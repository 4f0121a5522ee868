#include "federation/placement.h"

#include <gtest/gtest.h>

namespace sluice::federation {
namespace {

TopicPlacement split_placement() {
  TopicPlacement p;
  p.topic_id = new_topic_id();
  p.segments = {{"a", 6}, {"b", 6}};
  return p;
}

TEST(PlacementTest, NumbersPartitionsThroughTheSegments) {
  const TopicPlacement p = split_placement();
  EXPECT_EQ(p.partition_count(), 12);
  auto first = p.locate(0), last_of_a = p.locate(5), first_of_b = p.locate(6), last = p.locate(11);
  ASSERT_TRUE(first && last_of_a && first_of_b && last);
  EXPECT_EQ(*first->cluster, "a");
  EXPECT_EQ(first->partition, 0);
  EXPECT_EQ(*last_of_a->cluster, "a");
  EXPECT_EQ(last_of_a->partition, 5);
  EXPECT_EQ(*first_of_b->cluster, "b");
  EXPECT_EQ(first_of_b->partition, 0);
  EXPECT_EQ(last->partition, 5);
  EXPECT_FALSE(p.locate(12));
  EXPECT_FALSE(p.locate(-1));
  EXPECT_EQ(p.federated_partition("b", 3), 9);
  EXPECT_EQ(p.federated_partition("b", 6), -1);
  EXPECT_EQ(p.federated_partition("c", 0), -1);
  EXPECT_TRUE(p.on("a"));
  EXPECT_FALSE(p.on("c"));
}

TEST(PlacementTest, EncodingRoundTrips) {
  const TopicPlacement p = split_placement();
  const std::string text = encode_placement(p);
  EXPECT_EQ(text.substr(0, 2), "1 ");
  EXPECT_NE(text.find(" a:6 b:6"), std::string::npos);
  auto back = decode_placement(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->topic_id, p.topic_id);
  ASSERT_EQ(back->segments.size(), 2u);
  EXPECT_EQ(back->segments[1].cluster, "b");
  EXPECT_EQ(back->segments[1].partitions, 6);
}

TEST(PlacementTest, OffsetBasesRoundTripAndLocate) {
  TopicPlacement p = split_placement();
  p.segments[1].offset_bases = {0, 10, 0, 0, 0, 7};
  const std::string text = encode_placement(p);
  EXPECT_EQ(text.substr(0, 2), "2 ");
  EXPECT_NE(text.find(" a:6 b:6@0,10,0,0,0,7"), std::string::npos);
  auto back = decode_placement(text);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->segments[0].offset_bases.empty());
  EXPECT_EQ(back->segments[1].offset_bases, p.segments[1].offset_bases);
  EXPECT_EQ(back->locate(7)->offset_base, 10);
  EXPECT_EQ(back->locate(11)->offset_base, 7);
  EXPECT_EQ(back->locate(1)->offset_base, 0);
  // A segment further into its member's partitions.
  p.segments[1].first_member_partition = 2;
  back = decode_placement(encode_placement(p));
  ASSERT_TRUE(back);
  EXPECT_NE(encode_placement(p).find(" b:6+2@0,10,0,0,0,7"), std::string::npos);
  EXPECT_EQ(back->segments[1].first_member_partition, 2);
  EXPECT_EQ(back->locate(7)->partition, 3);
  EXPECT_EQ(back->federated_partition("b", 3), 7);
  EXPECT_EQ(back->federated_partition("b", 1), -1);
  p.segments[1].first_member_partition = 0;
  // All zero: written as version 1, which older endpoints read.
  p.segments[1].offset_bases.assign(6, 0);
  EXPECT_EQ(encode_placement(p).substr(0, 2), "1 ");
}

TEST(PlacementTest, RefusesWhatIsNotAPlacement) {
  const std::string id(32, 'a');
  EXPECT_FALSE(decode_placement(""));
  EXPECT_FALSE(decode_placement("3 " + id + " a:1"));       // a newer version
  EXPECT_FALSE(decode_placement("1 " + id + " a:2@0,5"));   // bases need version 2
  EXPECT_FALSE(decode_placement("1 " + id + " a:2+1"));     // so does a first member partition
  EXPECT_FALSE(decode_placement("2 " + id + " a:2+-1"));
  EXPECT_TRUE(decode_placement("2 " + id + " a:2+3@1,2"));
  EXPECT_FALSE(decode_placement("2 " + id + " a:2@5"));     // a base per partition
  EXPECT_FALSE(decode_placement("2 " + id + " a:2@5,-1"));  // never negative
  EXPECT_FALSE(decode_placement("2 " + id + " a:2@5,6,"));
  EXPECT_FALSE(decode_placement("1 " + id));                // no segment
  EXPECT_FALSE(decode_placement("1 " + id + " a:0"));       // an empty segment
  EXPECT_FALSE(decode_placement("1 " + id + " a:x"));
  EXPECT_FALSE(decode_placement("1 " + id + " a/b:1"));     // not a cluster name
  EXPECT_FALSE(decode_placement("1 " + std::string(32, 'g') + " a:1"));
  EXPECT_TRUE(decode_placement("1 " + id + " a:1"));
}

TEST(PlacementTest, NewTopicIdsDiffer) {
  EXPECT_FALSE(new_topic_id() == new_topic_id());
  EXPECT_FALSE(new_topic_id().is_zero());
}

}  // namespace
}  // namespace sluice::federation
