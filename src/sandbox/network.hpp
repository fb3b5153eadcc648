// sandbox/network.hpp — outbound network ("egress") for one environment: a
// veth pair between its network namespace and the host, a /30 out of
// 10.201.0.0/16 (host side .1, environment side .2 of each /30), a default
// route via the host side, and host-wide NAT for traffic leaving the machine.
// Internal to sandbox/; runs only in the helper and the environment's init.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace lambent::sandbox {

// Everything init needs to wire up the pair; computed by the helper before clone.
struct EgressPlan {
  std::string host_if;      // "lb" + 4 hex of the slot + 8 of the environment id
  in_addr_t host_addr = 0;  // network byte order
  in_addr_t env_addr = 0;
  int host_netlink = -1;  // NETLINK_ROUTE socket created in the host's network namespace
  int host_inet = -1;     // AF_INET socket of the host namespace, for address ioctls
};

// Hands out /30 slots round-robin (a just-freed slot's old interface may still
// be disappearing with its namespace), skipping addresses already present on
// the host (another daemon's environments). Owned by the helper.
class EgressAddresses {
 public:
  explicit EgressAddresses(std::uint32_t first_slot) : next_(first_slot % kSlots) {}
  // Slot index; -1 when every slot is taken.
  int allocate();
  void release(int slot);
  static in_addr_t host_address(int slot);
  static in_addr_t env_address(int slot);
  static constexpr int kSlots = 16384;  // 10.201.0.0/16 in /30s

 private:
  std::vector<bool> used_ = std::vector<bool>(kSlots, false);
  std::uint32_t next_;
};

// The host-namespace sockets init uses (it is inside the new namespace when it runs).
struct HostNetSockets {
  UniqueFd netlink, inet;
};
Result<HostNetSockets> open_host_net_sockets();

// Runs in init, inside the new network namespace, as root: only system calls.
// Creates the pair (peer "eth0" in this namespace), addresses both ends,
// brings them up, adds the default route. Returns 0 or an errno value.
int setup_egress_in_init(const EgressPlan& plan);

// Host-wide forwarding and NAT through nftables (table `table`, created once
// per daemon, deleted at its shutdown). Fails when nft is missing.
Result<void> enable_nat(const std::string& table);
void disable_nat(const std::string& table);

std::string format_ipv4(in_addr_t addr);

}  // namespace lambent::sandbox
