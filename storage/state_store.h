// The broker's key-value state (topic metadata, cluster identity; later
// committed offsets and producer state) in LMDB: atomic, crash-safe updates and
// lock-free readers.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct MDB_env;

namespace sluice::storage {

class StateStore {
 public:
  // Opens or creates the store in directory `dir`. Throws std::runtime_error.
  static std::unique_ptr<StateStore> open(const std::string& dir, size_t map_size_bytes = size_t{1} << 30);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  std::optional<std::string> get(std::string_view key) const;
  // Each call is one durable transaction.
  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  // Several puts and erases committed atomically: all or none survive a crash.
  struct Change {
    std::string key;
    std::optional<std::string> value;  // nullopt erases
  };
  void apply(const std::vector<Change>& changes);

  // Visits every key starting with `prefix`, in key order.
  void scan(std::string_view prefix, const std::function<void(std::string_view key, std::string_view value)>& visit) const;
  // Visits the keys starting with `prefix` from the first one not below
  // `from`, in key order, until visit returns false.
  void scan(std::string_view prefix, std::string_view from,
            const std::function<bool(std::string_view key, std::string_view value)>& visit) const;

 private:
  explicit StateStore(MDB_env* env, unsigned dbi) : env_(env), dbi_(dbi) {}
  MDB_env* env_;
  unsigned dbi_;
};

}  // namespace sluice::storage
