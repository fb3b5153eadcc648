// Process-mode Spawner tests: real processes, no privileges needed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "sandbox_test_util.hpp"

namespace lambent::sandbox {
namespace {

using namespace testing;

class ProcessSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = make_temp_dir();
    ASSERT_FALSE(root_.empty());
    task_ = root_ + "/task";
    ASSERT_TRUE(make_dirs(task_));
    SpawnerOptions o;
    o.isolation = Isolation::kProcess;
    o.state_dir = root_ + "/envs";
    auto s = start_spawner(o);
    ASSERT_TRUE(s) << s.error().message;
    spawner_ = std::move(*s);
  }
  void TearDown() override {
    if (spawner_) spawner_->shutdown();
    spawner_.reset();
    if (!root_.empty()) (void)remove_tree(root_);
  }

  SandboxSpec spec(std::vector<std::string> argv, std::vector<std::string> env = {}) {
    SandboxSpec s;
    s.id = test_id(++n_);
    s.function_name = "test";
    s.task_root = task_;
    s.runtime_root = "/nonexistent-runtime";
    s.argv = std::move(argv);
    s.env = std::move(env);
    return s;
  }
  SandboxSpec sh(const std::string& script) { return spec({"/bin/sh", "-c", script}); }

  std::string root_, task_;
  std::unique_ptr<LinuxSpawner> spawner_;
  int n_ = 0;
};

TEST_F(ProcessSandboxTest, OutputCarriesStdoutAndStderrAndExitCode) {
  ExitStatus st;
  EXPECT_EQ(run_to_exit(*spawner_, sh("echo out; echo err >&2; exit 7"), &st), "out\nerr\n");
  EXPECT_EQ(st.exit_code, 7);
  EXPECT_EQ(st.signal, 0);
  EXPECT_FALSE(st.oom_killed);
}

TEST_F(ProcessSandboxTest, EnvironmentIsExactlyTheSpecPlusRuntimeApiAndTmpdir) {
  auto sp = spec({"/usr/bin/env"}, {"A=1", "B=two words", "AWS_LAMBDA_RUNTIME_API=spoofed"});
  auto layout = spawner_->layout(sp);
  auto s = spawn_sync(*spawner_, sp);
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  std::string addr = (*s.sandbox)->runtime_api_address();
  EXPECT_TRUE(addr.starts_with("127.0.0.1:")) << addr;
  UniqueFd out = (*s.sandbox)->take_output();
  std::istringstream lines(read_all(out.get()));
  std::set<std::string> got;
  for (std::string l; std::getline(lines, l);) got.insert(l);
  std::set<std::string> want = {"A=1", "B=two words", "AWS_LAMBDA_RUNTIME_API=" + addr,
                                "TMPDIR=" + layout.tmp};
  EXPECT_EQ(got, want);
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.exit_code, 0);
}

TEST_F(ProcessSandboxTest, OpenFilesLimitIsTheSpecsNotTheDaemons) {
  // The daemon raises its own limit to the hard one; a function keeps Lambda's.
  SandboxSpec sp = sh("ulimit -n; ulimit -Hn");
  sp.max_fds = 777;
  ExitStatus st;
  EXPECT_EQ(run_to_exit(*spawner_, sp, &st), "777\n777\n");
  EXPECT_EQ(st.exit_code, 0);
}

TEST_F(ProcessSandboxTest, ProcessesStartOnTheCpusOfTheSpec) {
  // The engine places an environment on its shard's CPUs; none given: any.
  if (allowed_cpus().size() < 2) GTEST_SKIP() << "one CPU: a placement would change nothing";
  for (std::vector<int> cpus : {std::vector<int>{allowed_cpus().back()}, std::vector<int>{}}) {
    SandboxSpec sp = sh("grep Cpus_allowed_list /proc/self/status | cut -f2");
    sp.cpus = cpus;
    ExitStatus st;
    EXPECT_EQ(run_to_exit(*spawner_, sp, &st),
              cpu_list(cpus.empty() ? allowed_cpus() : cpus) + "\n");
    EXPECT_EQ(st.exit_code, 0);
  }
}

TEST_F(ProcessSandboxTest, WorkingFolderIsTaskRootAndStdinIsEmpty) {
  auto s = spawn_sync(*spawner_, sh("pwd; cat; echo end; ls /proc/self/fd | wc -l"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  UniqueFd out = (*s.sandbox)->take_output();
  // fds of `ls`: 0, 1, 2 and the one it opened to list the folder.
  EXPECT_EQ(read_all(out.get()), task_ + "\nend\n4\n");
}

TEST_F(ProcessSandboxTest, SignalIsReported) {
  auto s = spawn_sync(*spawner_, sh("kill -TERM $$"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.exit_code, -1);
  EXPECT_EQ(st.signal, SIGTERM);
}

TEST_F(ProcessSandboxTest, ListenerAcceptsConnectionsOnTheAdvertisedAddress) {
  auto s = spawn_sync(*spawner_, sh("echo ready; exec sleep 1000"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  Sandbox& sb = **s.sandbox;
  UniqueFd listener = sb.take_runtime_listener();
  ASSERT_TRUE(listener);
  EXPECT_TRUE(fcntl(listener.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(listener.get(), F_GETFD) & FD_CLOEXEC);
  std::string addr = sb.runtime_api_address();
  int port = std::stoi(addr.substr(addr.find(':') + 1));
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  pollfd p{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(conn);
  sb.kill();
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.signal, SIGKILL);
}

TEST_F(ProcessSandboxTest, KillKillsGrandchildren) {
  auto s = spawn_sync(*spawner_, sh("sleep 1000 & echo $!; wait"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  UniqueFd out = (*s.sandbox)->take_output();
  pid_t grandchild = std::stoi(read_line(out.get()));
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(process_gone(grandchild));
  (*s.sandbox)->kill();
  (*s.sandbox)->kill();  // idempotent
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_TRUE(eventually([&] { return process_gone(grandchild); }));
}

TEST_F(ProcessSandboxTest, MainExitKillsTheRestOfTheGroup) {
  auto s = spawn_sync(*spawner_, sh("sleep 1000 & echo $!"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  UniqueFd out = (*s.sandbox)->take_output();
  pid_t grandchild = std::stoi(read_line(out.get()));
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_TRUE(eventually([&] { return process_gone(grandchild); }));
}

TEST_F(ProcessSandboxTest, PerEnvironmentFolderIsUsedAndRemoved) {
  auto sp = sh("echo data > \"$TMPDIR/file\" && cat \"$TMPDIR/file\"");
  auto layout = spawner_->layout(sp);
  EXPECT_EQ(layout.task_root, task_);
  EXPECT_EQ(layout.tmp, root_ + "/envs/" + sp.id + "/tmp");
  ExitStatus st;
  EXPECT_EQ(run_to_exit(*spawner_, sp, &st), "data\n");
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_FALSE(path_exists(root_ + "/envs/" + sp.id));
}

TEST_F(ProcessSandboxTest, ExecFailureFailsTheSpawn) {
  auto s = spawn_sync(*spawner_, spec({"/nonexistent/bootstrap"}));
  ASSERT_FALSE(s.sandbox);
  EXPECT_EQ(s.sandbox.error().sys_errno, ENOENT);
  EXPECT_NE(s.sandbox.error().message.find("/nonexistent/bootstrap"), std::string::npos);
}

TEST_F(ProcessSandboxTest, InvalidIdIsRejected) {
  auto sp = sh("true");
  sp.id = "../escape";
  auto s = spawn_sync(*spawner_, sp);
  ASSERT_FALSE(s.sandbox);
  EXPECT_EQ(s.sandbox.error().code, Errc::kInvalidParameter);
}

TEST_F(ProcessSandboxTest, EgressInProcessModeIsTheHostNetwork) {
  // Process mode isolates nothing, the network included: egress is a no-op.
  auto sp = sh("echo \"[$LAMBENT_HOST_ADDRESS]\"");
  sp.network_egress = true;
  auto s = spawn_sync(*spawner_, sp);
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  UniqueFd out = (*s.sandbox)->take_output();
  EXPECT_EQ(read_line(out.get()), "[]");
  ExitStatus st;
  EXPECT_TRUE(wait_exit(s, &st));
}

TEST(DefaultCgroupName, IsStablePerStateDirAndDistinctAcrossDaemons) {
  EXPECT_EQ(default_cgroup_name("/var/lib/lambent/envs"),
            default_cgroup_name("/var/lib/lambent/envs"));
  EXPECT_NE(default_cgroup_name("/var/lib/lambent/envs"), default_cgroup_name("/tmp/a/envs"));
  EXPECT_TRUE(default_cgroup_name("/x").starts_with("lambent-"));
  EXPECT_EQ(default_cgroup_name("/x").size(), std::string("lambent-").size() + 12);
}

TEST_F(ProcessSandboxTest, FreezeStopsAndThawResumes) {
  auto s = spawn_sync(*spawner_, sh("exec sleep 1000"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  Sandbox& sb = **s.sandbox;
  auto state = [&] {
    auto r = read_file("/proc/" + std::to_string(sb.pid()) + "/stat");
    if (!r) return '?';
    return (*r)[r->rfind(')') + 2];
  };
  ASSERT_TRUE(sb.freeze());
  EXPECT_TRUE(eventually([&] { return state() == 'T'; }));
  ASSERT_TRUE(sb.thaw());
  EXPECT_TRUE(eventually([&] { return state() == 'S'; }));
  EXPECT_GT(sb.peak_memory_bytes(), 0u);
  sb.kill();
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
}

TEST_F(ProcessSandboxTest, DestroyingTheSandboxKillsIt) {
  auto s = spawn_sync(*spawner_, sh("exec sleep 1000"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  pid_t pid = (*s.sandbox)->pid();
  s.sandbox->reset();
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_TRUE(eventually([&] { return process_gone(pid); }));
}

TEST_F(ProcessSandboxTest, ShutdownKillsEveryEnvironment) {
  auto a = spawn_sync(*spawner_, sh("exec sleep 1000"));
  auto b = spawn_sync(*spawner_, sh("sleep 1000; true"));
  ASSERT_TRUE(a.sandbox && b.sandbox);
  spawner_->shutdown();
  ExitStatus st;
  ASSERT_TRUE(wait_exit(a, &st));
  EXPECT_EQ(st.signal, SIGKILL);
  ASSERT_TRUE(wait_exit(b, &st));
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_TRUE(process_gone((*a.sandbox)->pid()));
  auto late = spawn_sync(*spawner_, sh("true"));
  ASSERT_FALSE(late.sandbox);
  EXPECT_EQ(late.sandbox.error().code, Errc::kUnavailable);
}

TEST_F(ProcessSandboxTest, HelperDeathIsReported) {
  auto s = spawn_sync(*spawner_, sh("exec sleep 1000"));
  ASSERT_TRUE(s.sandbox) << s.sandbox.error().message;
  pid_t pid = (*s.sandbox)->pid();
  ASSERT_EQ(::kill(spawner_->helper_pid(), SIGKILL), 0);
  ExitStatus st;
  ASSERT_TRUE(wait_exit(s, &st));
  EXPECT_EQ(st.signal, SIGKILL);
  auto late = spawn_sync(*spawner_, sh("true"));
  ASSERT_FALSE(late.sandbox);
  EXPECT_EQ(late.sandbox.error().code, Errc::kUnavailable);
  // The environment's main process dies with the helper (parent-death signal).
  EXPECT_TRUE(eventually([&] { return process_gone(pid); }));
}

}  // namespace
}  // namespace lambent::sandbox
