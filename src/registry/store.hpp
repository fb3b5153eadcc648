// registry/store.hpp — durable storage of functions.
// Owns: persistence. Never: validation (model.hpp), caching (engine/ keeps the
// in-memory catalog), HTTP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "registry/model.hpp"

namespace lambent::registry {

// Thread-safe. Every write is durable when it returns (survives kill -9).
class Store {
 public:
  virtual ~Store() = default;
  virtual Result<std::vector<FunctionRecord>> load_all() = 0;
  virtual Result<void> put(const FunctionRecord& rec) = 0;  // insert or replace
  virtual Result<void> remove(std::string_view name) = 0;
};

// The embedded default: <data>/lambent.db, WAL.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

// Serialization of a record (the stored document). Exposed for tests.
std::string to_document(const FunctionRecord& rec);
Result<FunctionRecord> from_document(std::string_view doc);

}  // namespace lambent::registry
