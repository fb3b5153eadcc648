// sleep — holds its environment busy: the event is a number of milliseconds (e.g. `200`); the
// function sleeps that long and returns the event. The spawn-rate and density benchmarks use it
// so that N simultaneous invokes need N environments. Built as `sleep-bootstrap`.
#include <lambent/runtime.hpp>

#include <charconv>
#include <chrono>
#include <thread>

int main() {
  using lambent::runtime::Invocation;
  using lambent::runtime::Outcome;
  return lambent::runtime::run_handler([](const Invocation& inv) {
    long ms = 0;
    std::from_chars(inv.payload.data(), inv.payload.data() + inv.payload.size(), ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return Outcome::success_view(inv.payload, Outcome::kJsonContentType);
  });
}
