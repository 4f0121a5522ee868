#include "storage/state_store.h"

#include <algorithm>
#include <memory>

#include <lmdb.h>

#include <filesystem>
#include <stdexcept>

namespace sluice::storage {
namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw std::runtime_error(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
}

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

// Aborts the transaction unless committed: exceptions never leak an open txn.
class Txn {
 public:
  Txn(MDB_env* env, bool read_only) { check(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_), "begin"); }
  ~Txn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  void commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    check(rc, "commit");
  }
  MDB_txn* get() { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

}  // namespace

std::unique_ptr<StateStore> StateStore::open(const std::string& dir, size_t map_size_bytes) {
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "env_create");
  int rc = mdb_env_set_mapsize(env, map_size_bytes);
  if (rc == MDB_SUCCESS) rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644);
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env);
    check(rc, "env_open");
  }
  MDB_dbi dbi = 0;
  {
    Txn txn(env, false);
    check(mdb_dbi_open(txn.get(), nullptr, 0, &dbi), "dbi_open");
    txn.commit();
  }
  return std::unique_ptr<StateStore>(new StateStore(env, dbi));
}

StateStore::~StateStore() { mdb_env_close(env_); }

std::optional<std::string> StateStore::get(std::string_view key) const {
  Txn txn(env_, true);
  MDB_val k = as_val(key), v{};
  int rc = mdb_get(txn.get(), dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "get");
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

void StateStore::put(std::string_view key, std::string_view value) { apply({Change{std::string(key), std::string(value)}}); }

void StateStore::erase(std::string_view key) { apply({Change{std::string(key), std::nullopt}}); }

void StateStore::apply(const std::vector<Change>& changes) {
  Txn txn(env_, false);
  for (const auto& change : changes) {
    MDB_val k = as_val(change.key);
    if (change.value) {
      MDB_val v = as_val(*change.value);
      check(mdb_put(txn.get(), dbi_, &k, &v, 0), "put");
    } else {
      int rc = mdb_del(txn.get(), dbi_, &k, nullptr);
      if (rc != MDB_NOTFOUND) check(rc, "del");
    }
  }
  txn.commit();
}

void StateStore::scan(std::string_view prefix,
                      const std::function<void(std::string_view key, std::string_view value)>& visit) const {
  scan(prefix, prefix, [&](std::string_view key, std::string_view value) {
    visit(key, value);
    return true;
  });
}

void StateStore::scan(std::string_view prefix, std::string_view from,
                      const std::function<bool(std::string_view key, std::string_view value)>& visit) const {
  Txn txn(env_, true);
  MDB_cursor* raw = nullptr;
  check(mdb_cursor_open(txn.get(), dbi_, &raw), "cursor_open");
  // Closed however the scan ends: a visitor may throw (a corrupt record found).
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cursor(raw, mdb_cursor_close);
  MDB_val k = as_val(std::max(prefix, from)), v{};
  int rc = mdb_cursor_get(cursor.get(), &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!visit(key, std::string_view(static_cast<const char*>(v.mv_data), v.mv_size))) break;
    rc = mdb_cursor_get(cursor.get(), &k, &v, MDB_NEXT);
  }
  cursor.reset();
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) check(rc, "cursor_get");
}

}  // namespace sluice::storage
