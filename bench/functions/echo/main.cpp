// echo — the benchmarks' reference function: returns the event unchanged, with zero copies
// (the response borrows the receive buffer). Built as `echo-bootstrap`.
#include <lambent/runtime.hpp>

int main() {
  using lambent::runtime::Invocation;
  using lambent::runtime::Outcome;
  return lambent::runtime::run_handler([](const Invocation& inv) {
    return Outcome::success_view(
        inv.payload, inv.content_type.empty() ? Outcome::kJsonContentType : inv.content_type);
  });
}
