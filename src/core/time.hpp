// core/time.hpp — clocks and Lambda's timestamp formats.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lambent {

using SteadyTime = std::chrono::steady_clock::time_point;

std::int64_t unix_ms_now();
// FunctionConfiguration.LastModified: 2020-04-10T19:06:32.563+0000
std::string lambda_timestamp(std::int64_t unix_ms);
// ISO 8601 UTC with milliseconds: 2026-11-27T01:12:53.647Z
std::string iso8601_ms(std::int64_t unix_ms);
// YYYY/MM/DD (log stream prefix)
std::string date_path(std::int64_t unix_ms);

}  // namespace lambent
