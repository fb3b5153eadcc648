// runtime_cpp_loop — not a test: drives N echo invokes through run_handler against the in-process
// fake, to measure the client's per-invoke cost. Usage: runtime_cpp_loop N [payload_bytes]
//   valgrind --tool=callgrind --toggle-collect='lambent::runtime::detail::run_handler*'
//            runtime_cpp_loop 2000   (counts the client thread only; diff two N to drop setup)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <lambent/runtime.hpp>

#include "fake_runtime_api.hpp"

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  const std::size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 100;
  lambent::testing::FakeRuntimeApi::Options options;
  const std::string payload(size, 'x');
  for (int i = 0; i < n; ++i) {
    options.next_replies.push_back(lambent::testing::next_reply(
        "8476a536-e9f4-11e8-9739-2dfe598c3fcd-" + std::to_string(i), payload));
  }
  lambent::testing::FakeRuntimeApi api(std::move(options));
  std::fclose(stderr);  // the final "answered HTTP 500" line is expected
  const auto start = std::chrono::steady_clock::now();
  lambent::runtime::run_handler(
      [](const lambent::runtime::Invocation& inv) {
        return lambent::runtime::Outcome::success_view(inv.payload);
      },
      {.runtime_api = api.address()});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  api.stop();
  std::printf("%d invokes of %zu bytes: %.1f us per invoke (client + fake server, loopback)\n", n,
              size, std::chrono::duration<double, std::micro>(elapsed).count() / n);
  return api.requests().size() == static_cast<std::size_t>(2 * n + 1) ? 0 : 1;
}
