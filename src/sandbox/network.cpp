#include "sandbox/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <net/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>

namespace lambent::sandbox {
namespace {

constexpr in_addr_t kBase = (10u << 24) | (201u << 16);  // 10.201.0.0/16, host order

std::set<in_addr_t> host_addresses() {
  std::set<in_addr_t> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET) {
      out.insert(
          reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);  // sockaddr family checked
    }
  }
  ::freeifaddrs(list);
  return out;
}

// A netlink request built in a fixed buffer: init runs it between clone and
// exec, so nothing may allocate.
struct NlRequest {
  alignas(nlmsghdr) char buf[512] = {};
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }  // buf is aligned for nlmsghdr

  rtattr* add(int type, const void* data, std::size_t len) {
    nlmsghdr* n = hdr();
    std::size_t at = NLMSG_ALIGN(n->nlmsg_len);
    if (at + RTA_SPACE(len) > sizeof(buf)) return nullptr;
    auto* a = reinterpret_cast<rtattr*>(buf + at);  // within buf, RTA-aligned
    a->rta_type = static_cast<unsigned short>(type);
    a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    if (len > 0) std::memcpy(RTA_DATA(a), data, len);
    n->nlmsg_len = static_cast<std::uint32_t>(at + RTA_SPACE(len));
    return a;
  }
  void* reserve(std::size_t len) {
    nlmsghdr* n = hdr();
    std::size_t at = NLMSG_ALIGN(n->nlmsg_len);
    n->nlmsg_len = static_cast<std::uint32_t>(at + NLMSG_ALIGN(len));
    return buf + at;
  }
  void end(rtattr* nest) {
    nest->rta_len =
        static_cast<unsigned short>(buf + hdr()->nlmsg_len - reinterpret_cast<char*>(nest));
  }
};

// Sends one request and waits for its acknowledgement; 0 or an errno value.
int netlink_call(int sock, NlRequest& req) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(sock, req.buf, req.hdr()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {  // sockaddr_nl is a sockaddr
    return errno;
  }
  alignas(nlmsghdr) char reply[1024];
  ssize_t n = ::recv(sock, reply, sizeof(reply), 0);
  if (n < 0) return errno;
  auto* h = reinterpret_cast<nlmsghdr*>(reply);  // aligned buffer
  if (!NLMSG_OK(h, static_cast<std::size_t>(n)) || h->nlmsg_type != NLMSG_ERROR) return EPROTO;
  auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
  return -e->error;
}

int set_address(int sock, const char* ifname, in_addr_t addr) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);  // the ioctl's documented layout
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = addr;
  if (::ioctl(sock, SIOCSIFADDR, &ifr) != 0) return errno;
  sin->sin_addr.s_addr = htonl(0xfffffffcu);  // /30
  if (::ioctl(sock, SIOCSIFNETMASK, &ifr) != 0) return errno;
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return errno;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return errno;
  return 0;
}

int disable_ipv6(const char* ifname) {
  // The environment gets IPv4 only: no link-local IPv6 path to host services.
  char path[96];
  std::snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno;  // kernel without IPv6
  int rc = ::write(fd, "1", 1) == 1 ? 0 : errno;
  ::close(fd);
  return rc;
}

int run_nft(const std::string& script) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(in[0], 0);
    // nft's complaints (e.g. deleting an absent table) would land in the daemon's log.
    int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
    }
    const char* paths[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"};
    for (const char* p : paths) ::execl(p, "nft", "-f", "-", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  [[maybe_unused]] ssize_t n = ::write(in[1], script.data(), script.size());
  ::close(in[1]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int EgressAddresses::allocate() {
  std::set<in_addr_t> present = host_addresses();
  for (int tries = 0; tries < kSlots; ++tries) {
    int slot = static_cast<int>(next_);
    next_ = (next_ + 1) % kSlots;
    if (used_[static_cast<std::size_t>(slot)] || present.contains(host_address(slot)) ||
        present.contains(env_address(slot))) {
      continue;
    }
    used_[static_cast<std::size_t>(slot)] = true;
    return slot;
  }
  return -1;
}

void EgressAddresses::release(int slot) {
  if (slot >= 0 && slot < kSlots) used_[static_cast<std::size_t>(slot)] = false;
}

in_addr_t EgressAddresses::host_address(int slot) {
  return htonl(kBase + static_cast<in_addr_t>(slot) * 4 + 1);
}

in_addr_t EgressAddresses::env_address(int slot) {
  return htonl(kBase + static_cast<in_addr_t>(slot) * 4 + 2);
}

std::string format_ipv4(in_addr_t addr) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{addr};
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

Result<HostNetSockets> open_host_net_sockets() {
  HostNetSockets s;
  s.netlink.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s.netlink) return fail(sys_error("opening a netlink socket", errno));
  s.inet.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.inet) return fail(sys_error("opening an AF_INET socket", errno));
  return s;
}

int setup_egress_in_init(const EgressPlan& plan) {
  int own_ns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (own_ns < 0) return errno;

  // RTM_NEWLINK in the host namespace: veth <host_if>, peer eth0 moved into ours.
  NlRequest req;
  nlmsghdr* h = req.hdr();
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  h->nlmsg_seq = 1;
  req.add(IFLA_IFNAME, plan.host_if.c_str(), plan.host_if.size() + 1);
  rtattr* linkinfo = req.add(IFLA_LINKINFO, nullptr, 0);
  req.add(IFLA_INFO_KIND, "veth", 5);
  rtattr* data = req.add(IFLA_INFO_DATA, nullptr, 0);
  rtattr* peer = req.add(VETH_INFO_PEER, nullptr, 0);
  req.reserve(sizeof(ifinfomsg));
  req.add(IFLA_IFNAME, "eth0", 5);
  std::uint32_t ns_fd = static_cast<std::uint32_t>(own_ns);
  rtattr* last = req.add(IFLA_NET_NS_FD, &ns_fd, sizeof(ns_fd));
  if (last == nullptr) {
    ::close(own_ns);
    return EMSGSIZE;
  }
  req.end(peer);
  req.end(data);
  req.end(linkinfo);
  int rc = netlink_call(plan.host_netlink, req);
  ::close(own_ns);
  if (rc != 0) return rc;

  if ((rc = set_address(plan.host_inet, plan.host_if.c_str(), plan.host_addr)) != 0) return rc;
  if ((rc = disable_ipv6("eth0")) != 0) return rc;
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  rc = set_address(s, "eth0", plan.env_addr);
  if (rc == 0) {
    rtentry rt{};
    auto* dst = reinterpret_cast<sockaddr_in*>(&rt.rt_dst);  // the ioctl's documented layout
    auto* gw = reinterpret_cast<sockaddr_in*>(&rt.rt_gateway);
    auto* mask = reinterpret_cast<sockaddr_in*>(&rt.rt_genmask);
    dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
    gw->sin_addr.s_addr = plan.host_addr;
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (::ioctl(s, SIOCADDRT, &rt) != 0) rc = errno;
  }
  ::close(s);
  return rc;
}

Result<void> enable_nat(const std::string& table) {
  // Forwarding is host-wide; NAT and the filter live in this daemon's own table.
  int fd = ::open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "1", 1) != 1) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return fail(sys_error("enabling IPv4 forwarding", err));
  }
  ::close(fd);
  // Environments never reach each other through the host; everything else
  // leaving through another interface is masqueraded.
  std::string script = fmt::format(
      "table ip {0} {{\n"
      "  chain forward {{ type filter hook forward priority filter; policy accept;\n"
      "    iifname \"lb*\" oifname \"lb*\" drop; }}\n"
      "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr 10.201.0.0/16 oifname != \"lb*\" masquerade; }}\n"
      "}}\n",
      table);
  int rc = run_nft("delete table ip " + table + "\n");
  (void)rc;  // absent on a clean start
  if (run_nft(script) != 0) {
    return fail(Errc::kUnavailable,
                "egress: nft failed to install the NAT table (is nftables installed?); "
                "environments reach only the host");
  }
  return {};
}

void disable_nat(const std::string& table) {
  (void)run_nft("delete table ip " + table + "\n");
}

}  // namespace lambent::sandbox
