#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace lambent::log {

void init(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("lambent");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

bool RateLimit::allow() {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
  auto w = window_.load(std::memory_order_relaxed);
  if (w != now_s && window_.compare_exchange_strong(w, now_s)) count_.store(0);
  return count_.fetch_add(1, std::memory_order_relaxed) < burst_;
}

}  // namespace lambent::log
