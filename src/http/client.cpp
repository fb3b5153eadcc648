#include "http/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <strings.h>

#include <optional>

namespace lambent::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return {};
}

struct Client::Impl {
  std::string host, port;
  asio::io_context ioc;
  std::optional<tcp::socket> socket;
  boost::beast::flat_buffer buffer;
};

Client::Client(std::string host, std::string port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = std::move(port);
  // Beast reads as much as the buffer has room for, and the parser empties it as it goes: a
  // buffer left to grow by itself stays at 512 bytes, one receive each (see http/server.cpp's
  // ReadBuffer). One client per command: 64 KiB of room is no cost.
  impl_->buffer.reserve(64 * 1024);
}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<ClientResponse> Client::request(
    const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    int timeout_s) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    boost::system::error_code ec;
    const bool reused = impl_->socket.has_value();
    if (!impl_->socket) {
      tcp::resolver resolver(impl_->ioc);
      auto results = resolver.resolve(impl_->host, impl_->port, ec);
      if (ec) return fail(sys_error("resolving " + impl_->host, ec.value()));
      impl_->socket.emplace(impl_->ioc);
      asio::connect(*impl_->socket, results, ec);
      if (ec) {
        impl_->socket.reset();
        return fail(Errc::kUnavailable, "cannot connect to Lambent at " + impl_->host + ":" +
                                            impl_->port + " (" + ec.message() +
                                            "); is `lambent serve` running?");
      }
      impl_->socket->set_option(tcp::no_delay(true));
      if (timeout_s > 0) {
        timeval tv{timeout_s, 0};
        ::setsockopt(impl_->socket->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      }
    }
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    bhttp::write(*impl_->socket, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256ull * 1024 * 1024);
    parser.header_limit(1024 * 1024);
    if (!ec) bhttp::read(*impl_->socket, impl_->buffer, parser, ec);
    if (ec) {
      impl_->socket.reset();
      impl_->buffer.clear();
      if (reused && attempt == 0) continue;  // the server closed an idle keep-alive connection
      return fail(sys_error("HTTP " + method + " " + target, ec.value()));
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = res.result_int();
    for (const auto& f : res)
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    out.body = std::move(res.body());
    if (!res.keep_alive()) impl_->socket.reset();
    return out;
  }
  return fail(Errc::kInternal, "unreachable");
}

}  // namespace lambent::http
