// engine/invocation.hpp — one invoke in flight, and how it ended.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/time.hpp"

namespace lambent::engine {

struct InvokeOutcome {
  std::optional<Error> error;   // the platform could not run it (throttled, not found, …)
  std::string payload;          // the function's response or error document, verbatim
  bool function_error = false;  // X-Amz-Function-Error: Unhandled
  std::string log_tail;         // last 4 KB of this invocation's log, when asked for
  std::string executed_version;
};

// Created by api/ for each Invoke; the payload is moved through untouched.
struct Invocation {
  std::string request_id;
  std::string payload;           // event bytes
  std::string client_context;    // decoded JSON, empty when none
  std::string cognito_identity;  // JSON, empty when none
  std::string trace_id;
  std::string invoked_arn;       // the ARN as the caller named it (qualified if they qualified it)
  std::string executed_version;  // set by the engine when resolved
  bool want_tail = false;
  bool init_retried = false;  // an environment's init failed for it and was tried again
  SteadyTime accepted_at{};
  // Called exactly once, on an engine shard thread; must not block.
  std::function<void(InvokeOutcome&&)> done;
  // Concurrency slots held while in flight, released on completion: the engine's total, the
  // function's, and the unreserved pool's or its version's provisioned concurrency's.
  std::atomic<int>* in_flight = nullptr;
  std::atomic<int>* pool_slot = nullptr;
  std::shared_ptr<std::atomic<int>> function_slot;
  std::shared_ptr<std::atomic<int>> provisioned_slot;

  void release_slots() {
    if (in_flight) in_flight->fetch_sub(1, std::memory_order_relaxed);
    if (pool_slot) pool_slot->fetch_sub(1, std::memory_order_relaxed);
    if (function_slot) function_slot->fetch_sub(1, std::memory_order_relaxed);
    if (provisioned_slot) provisioned_slot->fetch_sub(1, std::memory_order_relaxed);
    in_flight = pool_slot = nullptr;
    function_slot.reset();
    provisioned_slot.reset();
  }
  void complete(InvokeOutcome&& o) {
    if (!done) return;
    auto d = std::move(done);
    done = nullptr;
    release_slots();
    if (o.executed_version.empty()) o.executed_version = executed_version;
    d(std::move(o));
  }
  void fail(Error e) {
    InvokeOutcome o;
    o.error = std::move(e);
    complete(std::move(o));
  }
};

using InvocationPtr = std::shared_ptr<Invocation>;

}  // namespace lambent::engine
