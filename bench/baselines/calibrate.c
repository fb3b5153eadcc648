/* bench-calibrate — what this machine charges for the three things every warm invoke is made
 * of, so that figures from different machines can be compared (bench/RESULTS.md):
 *
 *   syscall_ns          one trivial system call (getppid), best of 3 x 1,000,000
 *   pipe_round_trip_us  a 1-byte ping-pong between two processes on one CPU through two pipes:
 *                       2 writes, 2 reads and 2 process switches, best of 3 x 20,000
 *   tcp_round_trip_us   the same with a 64-byte message over a loopback TCP connection with
 *                       TCP_NODELAY: one exchange between the daemon and a runtime
 *
 * Both processes of a ping-pong are pinned to the same CPU, so each round trip includes two
 * full switches and no cross-CPU wake-up. Prints one JSON object.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kSyscalls = 1000000, kRoundTrips = 20000, kBestOf = 3, kMessage = 64 };

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void pin_to_first_allowed_cpu(void) {
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) die("sched_getaffinity");
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) die("sched_setaffinity");
    return;
  }
}

static void read_full(int fd, char* buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) die("read");
    buf += r;
    n -= (size_t)r;
  }
}

static void write_full(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w <= 0) die("write");
    buf += w;
    n -= (size_t)w;
  }
}

static double syscall_ns(void) {
  double best = 1e18;
  for (int round = 0; round < kBestOf; ++round) {
    const double t0 = now_ns();
    for (int i = 0; i < kSyscalls; ++i) syscall(SYS_getppid);
    const double per = (now_ns() - t0) / kSyscalls;
    if (per < best) best = per;
  }
  return best;
}

/* Times kRoundTrips ping-pongs of `size` bytes: this process writes to `out` and reads the
 * answer from `in`; a forked echoer on the same CPU does the reverse. Best of kBestOf, in us. */
static double ping_pong_us(int out, int in, int echo_in, int echo_out, size_t size) {
  char buf[kMessage];
  memset(buf, 'x', sizeof buf);
  const pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    for (;;) {
      read_full(echo_in, buf, size);
      write_full(echo_out, buf, size);
    }
  }
  double best = 1e18;
  for (int round = 0; round < kBestOf; ++round) {
    const double t0 = now_ns();
    for (int i = 0; i < kRoundTrips; ++i) {
      write_full(out, buf, size);
      read_full(in, buf, size);
    }
    const double per = (now_ns() - t0) / kRoundTrips / 1e3;
    if (per < best) best = per;
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return best;
}

static double pipe_round_trip_us(void) {
  int there[2], back[2];
  if (pipe(there) != 0 || pipe(back) != 0) die("pipe");
  const double us = ping_pong_us(there[1], back[0], there[0], back[1], 1);
  close(there[0]), close(there[1]), close(back[0]), close(back[1]);
  return us;
}

static double tcp_round_trip_us(void) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr*)&addr, &len) != 0)
    die("listening on loopback");
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0 || connect(client, (struct sockaddr*)&addr, sizeof addr) != 0) die("connect");
  const int server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (server < 0) die("accept");
  const int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const double us = ping_pong_us(client, client, server, server, kMessage);
  close(client), close(server), close(listener);
  return us;
}

int main(void) {
  pin_to_first_allowed_cpu();
  const double sys = syscall_ns();
  const double pipe_us = pipe_round_trip_us();
  const double tcp_us = tcp_round_trip_us();
  printf("{\"syscall_ns\":%.0f,\"pipe_round_trip_us\":%.2f,\"tcp_round_trip_us\":%.2f}\n", sys,
         pipe_us, tcp_us);
  return 0;
}
