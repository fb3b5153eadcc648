// hello-cpp — a Lambda function written against lambent/runtime.hpp. Built as the custom-runtime
// `bootstrap`; runs unchanged on Lambent and on AWS Lambda (provided.al2023).
#include <lambent/runtime.hpp>

#include <string>
#include <string_view>

namespace {

// The raw text (escapes kept, quotes dropped) of the first string value of "name" in `json`.
// Deliberately minimal — a real function would use a JSON library — but it never produces
// invalid JSON: the text is copied between quotes exactly as it was escaped in the input.
std::string_view find_name(std::string_view json) {
  constexpr std::string_view kKey = "\"name\"";
  const auto key = json.find(kKey);
  if (key == std::string_view::npos) return {};
  std::size_t i = key + kKey.size();
  while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n')) ++i;
  if (i >= json.size() || json[i] != ':') return {};
  ++i;
  while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n')) ++i;
  if (i >= json.size() || json[i] != '"') return {};
  const std::size_t start = ++i;
  for (; i < json.size(); ++i) {
    if (json[i] == '\\') {
      ++i;  // skip the escaped character, whatever it is
    } else if (json[i] == '"') {
      return json.substr(start, i - start);
    } else if (static_cast<unsigned char>(json[i]) < 0x20) {
      return {};  // not a valid JSON string
    }
  }
  return {};
}

}  // namespace

int main() {
  // Reused across invokes, and outlives each post, so the response can borrow it: no
  // allocation per invoke once it has grown.
  std::string body;
  return lambent::runtime::run_handler([&body](const lambent::runtime::Invocation& inv) {
    const std::string_view name = find_name(inv.payload);
    body.assign(R"({"message":"Hello from C++)");
    if (!name.empty()) body.append(", ").append(name).append("!");
    body.append(R"("})");
    return lambent::runtime::Outcome::success_view(body);
  });
}
