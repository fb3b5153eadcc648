// sandbox/wire.hpp — the daemon ↔ helper protocol: one JSON document per
// SOCK_SEQPACKET message, file descriptors attached with SCM_RIGHTS.
// Internal to sandbox/.
#pragma once

#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <span>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "sandbox/sandbox.hpp"

namespace lambent::sandbox::wire {

// A spec with 4 KB of environment and a long argv fits easily; the socket's
// send buffer bounds a SEQPACKET message anyway.
inline constexpr std::size_t kMaxMessage = 192 * 1024;
inline constexpr std::size_t kMaxFds = 8;

struct Message {
  nlohmann::json body;
  std::vector<UniqueFd> fds;
};

// Never raises SIGPIPE: a vanished peer is an error, not a signal.
Result<void> send(int sock, const nlohmann::json& body, std::span<const int> fds = {});
// The framing under send(), for other payloads (init's binary report): one
// message of `size` bytes with at most kMaxFds `fds` attached. 0 or an errno.
int send_bytes(int sock, const void* data, std::size_t size, std::span<const int> fds);
// The fds a received message carried (SCM_RIGHTS), in order.
std::vector<UniqueFd> take_fds(msghdr& msg);
// std::nullopt on end of file (the peer closed its end). Received fds are CLOEXEC.
Result<std::optional<Message>> receive(int sock);

nlohmann::json to_json(const SandboxSpec& spec);
Result<SandboxSpec> spec_from_json(const nlohmann::json& j);
nlohmann::json to_json(const Error& e);
Error error_from_json(const nlohmann::json& j);

// Environment ids name folders and cgroups: only [0-9A-Za-z_-], 1..64 chars.
bool valid_env_id(std::string_view id);

}  // namespace lambent::sandbox::wire
