// core/log.hpp — leveled, component-prefixed logging for the daemon.
// Function-triggered messages must go through LAMBENT_LOG_RATELIMITED so a
// tenant cannot flood the daemon's own log.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

namespace lambent::log {

void init(std::string_view level);  // "trace".."off"; called once by the composition root

// Allows at most `burst` messages per second per call site.
class RateLimit {
 public:
  explicit RateLimit(int burst) : burst_(burst) {}
  bool allow();

 private:
  int burst_;
  std::atomic<std::int64_t> window_{0};
  std::atomic<int> count_{0};
};

}  // namespace lambent::log

#define LAMBENT_LOG_TRACE(component, ...) SPDLOG_TRACE("[" component "] " __VA_ARGS__)
#define LAMBENT_LOG_DEBUG(component, ...) spdlog::debug("[" component "] " __VA_ARGS__)
#define LAMBENT_LOG_INFO(component, ...) spdlog::info("[" component "] " __VA_ARGS__)
#define LAMBENT_LOG_WARN(component, ...) spdlog::warn("[" component "] " __VA_ARGS__)
#define LAMBENT_LOG_ERROR(component, ...) spdlog::error("[" component "] " __VA_ARGS__)
#define LAMBENT_LOG_RATELIMITED(level, component, ...)                      \
  do {                                                                      \
    static ::lambent::log::RateLimit lambent_rl_(10);                       \
    if (lambent_rl_.allow()) spdlog::level("[" component "] " __VA_ARGS__); \
  } while (0)
