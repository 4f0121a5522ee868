#include "storage/state_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace sluice::storage {
namespace {

TEST(StateStoreTest, PutGetScanEraseAndReopen) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-state-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto store = StateStore::open(dir.string());
    store->put("topic/b", "2");
    store->put("topic/a", "1");
    store->put("other", "x");
    store->apply({{"topic/c", std::string("3")}, {"other", std::nullopt}});
    EXPECT_EQ(store->get("topic/a"), "1");
    EXPECT_FALSE(store->get("other").has_value());
    std::vector<std::string> keys;
    store->scan("topic/", [&](std::string_view k, std::string_view) { keys.emplace_back(k); });
    EXPECT_EQ(keys, (std::vector<std::string>{"topic/a", "topic/b", "topic/c"}));
    store->erase("topic/b");
  }
  auto store = StateStore::open(dir.string());
  EXPECT_EQ(store->get("topic/c"), "3");
  EXPECT_FALSE(store->get("topic/b").has_value());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::storage
