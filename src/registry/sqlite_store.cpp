#include <sqlite3.h>

#include <mutex>

#include "registry/store.hpp"

namespace lambent::registry {

namespace {

// RAII owner of a prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Thread-safe by serializing all access on one connection: the store is only
// used by the control plane, never by the invoke path.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Result<std::vector<FunctionRecord>> load_all() override {
    std::lock_guard lock(mu_);
    Statement st(db_, "SELECT name, doc FROM functions ORDER BY name");
    if (!st) return db_error("preparing load");
    std::vector<FunctionRecord> out;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const auto* doc =
          reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));  // UTF-8 text
      auto rec = from_document(doc ? doc : "");
      if (!rec) return fail(std::move(rec.error()));
      out.push_back(std::move(*rec));
    }
    if (rc != SQLITE_DONE) return db_error("loading functions");
    return out;
  }

  Result<void> put(const FunctionRecord& rec) override {
    std::lock_guard lock(mu_);
    Statement st(db_,
                 "INSERT INTO functions(name, doc) VALUES(?1, ?2) "
                 "ON CONFLICT(name) DO UPDATE SET doc = excluded.doc");
    if (!st) return db_error("preparing put");
    const std::string doc = to_document(rec);
    sqlite3_bind_text(st.get(), 1, rec.latest.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.get(), 2, doc.c_str(), static_cast<int>(doc.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.get()) != SQLITE_DONE)
      return db_error("storing function " + rec.latest.name);
    return {};
  }

  Result<void> remove(std::string_view name) override {
    std::lock_guard lock(mu_);
    Statement st(db_, "DELETE FROM functions WHERE name = ?1");
    if (!st) return db_error("preparing delete");
    sqlite3_bind_text(st.get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.get()) != SQLITE_DONE)
      return db_error("deleting function " + std::string(name));
    return {};
  }

 private:
  std::unexpected<Error> db_error(const std::string& what) {
    return fail(Errc::kIo, what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return fail(Errc::kIo, "opening " + path + ": " + msg);
  }
  auto store = std::make_unique<SqliteStore>(db);
  char* err = nullptr;
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=FULL;"
      "PRAGMA busy_timeout=5000;"
      "CREATE TABLE IF NOT EXISTS functions("
      "  name TEXT PRIMARY KEY,"
      "  doc TEXT NOT NULL);";
  if (sqlite3_exec(db, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return fail(Errc::kIo, "initialising " + path + ": " + msg);
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace lambent::registry
