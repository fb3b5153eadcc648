#include "sandbox/wire.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace lambent::sandbox::wire {

int send_bytes(int sock, const void* data, std::size_t size, std::span<const int> fds) {
  if (fds.size() > kMaxFds) return EINVAL;
  iovec iov{const_cast<void*>(data), size};  // sendmsg does not write it
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

std::vector<UniqueFd> take_fds(msghdr& msg) {
  std::vector<UniqueFd> out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.emplace_back(fd);
    }
  }
  return out;
}

Result<void> send(int sock, const nlohmann::json& body, std::span<const int> fds) {
  std::string text = body.dump();
  if (text.size() > kMaxMessage) return fail(Errc::kInvalidParameter, "sandbox message too large");
  if (fds.size() > kMaxFds) return fail(Errc::kInternal, "too many fds in one sandbox message");
  if (int err = send_bytes(sock, text.data(), text.size(), fds); err != 0) {
    return fail(sys_error("sending to the sandbox helper", err));
  }
  return {};
}

Result<std::optional<Message>> receive(int sock) {
  // One buffer per thread, never zeroed: a fresh zero-filled 192 KiB per
  // message cost ~0.6 ms in every sandbox's init, whose heap pages are
  // copy-on-write shares of the helper's (perf, 200-spawn burst).
  thread_local const std::unique_ptr<char[]> buf(new char[kMaxMessage]);
  iovec iov{buf.get(), kMaxMessage};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail(sys_error("receiving from the sandbox helper", errno));
  Message out;
  out.fds = take_fds(msg);
  if (n == 0 && out.fds.empty()) return std::optional<Message>{};
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return fail(Errc::kInternal, "truncated message from the sandbox helper");
  }
  out.body = nlohmann::json::parse(buf.get(), buf.get() + n, nullptr, /*allow_exceptions=*/false);
  if (out.body.is_discarded() || !out.body.is_object()) {
    return fail(Errc::kInternal, "malformed message from the sandbox helper");
  }
  return std::optional<Message>(std::move(out));
}

nlohmann::json to_json(const SandboxSpec& s) {
  return {{"id", s.id},
          {"function_name", s.function_name},
          {"task_root", s.task_root},
          {"layer_roots", s.layer_roots},
          {"runtime_root", s.runtime_root},
          {"argv", s.argv},
          {"env", s.env},
          {"memory_bytes", s.memory_bytes},
          {"tmp_bytes", s.tmp_bytes},
          {"max_pids", s.max_pids},
          {"max_fds", s.max_fds},
          {"cpu_weight", s.cpu_weight},
          {"cpus", s.cpus},
          {"network_egress", s.network_egress}};
}

Result<SandboxSpec> spec_from_json(const nlohmann::json& j) {
  try {
    SandboxSpec s;
    s.id = j.at("id").get<std::string>();
    s.function_name = j.at("function_name").get<std::string>();
    s.task_root = j.at("task_root").get<std::string>();
    s.layer_roots = j.at("layer_roots").get<std::vector<std::string>>();
    s.runtime_root = j.at("runtime_root").get<std::string>();
    s.argv = j.at("argv").get<std::vector<std::string>>();
    s.env = j.at("env").get<std::vector<std::string>>();
    s.memory_bytes = j.at("memory_bytes").get<std::uint64_t>();
    s.tmp_bytes = j.at("tmp_bytes").get<std::uint64_t>();
    s.max_pids = j.at("max_pids").get<std::uint32_t>();
    s.max_fds = j.at("max_fds").get<std::uint32_t>();
    s.cpu_weight = j.at("cpu_weight").get<std::uint32_t>();
    s.cpus = j.at("cpus").get<std::vector<int>>();
    s.network_egress = j.at("network_egress").get<bool>();
    return s;
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInternal, std::string("malformed sandbox spec: ") + e.what());
  }
}

nlohmann::json to_json(const Error& e) {
  return {{"code", static_cast<int>(e.code)},
          {"message", e.message},
          {"errno", e.sys_errno},
          {"detail", e.detail}};
}

Error error_from_json(const nlohmann::json& j) {
  Error e;
  e.code = static_cast<Errc>(j.value("code", static_cast<int>(Errc::kInternal)));
  e.message = j.value("message", std::string("unknown sandbox helper error"));
  e.sys_errno = j.value("errno", 0);
  e.detail = j.value("detail", std::string());
  return e;
}

bool valid_env_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace lambent::sandbox::wire
