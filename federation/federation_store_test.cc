// The creation record's items (FORMATS.md, "The federation's state"): what a
// creation or a move leaves on a member to delete.
#include "federation/federation_store.h"

#include <gtest/gtest.h>

namespace sluice::federation {
namespace {

TEST(LeftPart, WholeTopicsAndPartitionsRoundTrip) {
  EXPECT_EQ(left_part("a"), "a");
  EXPECT_EQ(left_part("dc-2.east", 7), "dc-2.east:7");
  EXPECT_EQ(parse_left_part("a"), std::pair(std::string("a"), int32_t{-1}));
  EXPECT_EQ(parse_left_part(left_part("dc-2.east", 7)), std::pair(std::string("dc-2.east"), int32_t{7}));
  EXPECT_EQ(parse_left_part("b:0"), std::pair(std::string("b"), int32_t{0}));
}

TEST(LeftPart, MalformedItemsAreNeverTheWholeTopic) {
  // Read as "delete the topic on a", any of these would lose a member's data.
  for (const char* bad : {"a:", "a:x", "a:-1", "a:3x", ":3", "a:99999999999"})
    EXPECT_FALSE(parse_left_part(bad).has_value()) << bad;
}

}  // namespace
}  // namespace sluice::federation
