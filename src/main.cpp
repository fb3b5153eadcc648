// lambent — one binary: `serve` is the daemon; every other subcommand is a
// client of its HTTP API.
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "serve.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lambent: a self-hosted, AWS Lambda-compatible serverless platform"};
  app.require_subcommand(1);
  int exit_code = 0;

  lambent::ServeOptions o;
  auto* serve = app.add_subcommand("serve", "Run the daemon");
  serve->add_option("--listen", o.listen, "HOST:PORT of the Lambda API (default 127.0.0.1:9000)");
  serve->add_option("--data-dir", o.data_dir, "data folder (default ~/.lambent)");
  serve->add_option("--auth", o.auth, "sigv4 (default) or none")
      ->check(CLI::IsMember({"sigv4", "none"}));
  serve->add_option("--isolation", o.isolation, "namespaces (default) or process")
      ->check(CLI::IsMember({"namespaces", "process"}));
  serve->add_option("--region", o.region, "region used in ARNs (default us-east-1)");
  serve->add_option("--account", o.account, "12-digit account id used in ARNs");
  serve->add_option("--threads", o.threads, "event-loop threads (default: one per CPU)");
  serve
      ->add_option("--cpu-placement", o.cpu_placement,
                   "shard (default): each event loop on its own CPUs, and environments of up "
                   "to 1,769 MB on their event loop's; off: the kernel places both")
      ->check(CLI::IsMember({"shard", "off"}));
  serve
      ->add_option("--poll-us", o.poll_us,
                   "microseconds an idle event loop busy-polls before it sleeps, at most "
                   "(default 100; adapts to the gaps between requests; 0: never)")
      ->check(CLI::Range(0, 10000));
  serve->add_option("--keep-warm", o.keep_warm_s,
                    "seconds an idle environment is kept (default 600)");
  serve->add_option("--init-timeout", o.init_timeout_s,
                    "seconds allowed for a runtime's init (default 10)");
  serve->add_option("--shutdown-grace", o.shutdown_grace_s,
                    "seconds in-flight invokes get on SIGTERM (default 10)");
  serve
      ->add_option("--concurrency", o.account_concurrency,
                   "account concurrency limit (default 1000)")
      ->check(CLI::Range(1, 1'000'000));
  serve->add_option("--memory-budget", o.memory_budget_mb,
                    "MB that environments' MemorySize may add up to (default 8x host memory)");
  serve->add_option("--queue-timeout", o.queue_timeout_s,
                    "seconds an invoke may wait for an environment before 429 (default 15)");
  serve
      ->add_option("--body-budget", o.body_budget_mb,
                   "MB of Lambda API request bodies (over 64 KiB each) held while they arrive, "
                   "before their signatures are checked; beyond it they get 429 (default 512)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  serve->add_option("--python", o.python,
                    "interpreter for python3.x runtimes (default /usr/bin/python3)");
  serve->add_option("--node", o.node, "interpreter for nodejs runtimes (default /usr/bin/node)");
  serve->add_option("--runtime", o.runtime_interpreters,
                    "interpreter for one runtime identifier, RUNTIME=PATH (repeatable), e.g. "
                    "python3.12=/usr/bin/python3.12");
  serve->add_option("--runtime-dir", o.runtime_dir, "folder holding Lambent's runtime clients");
  serve->add_option("--egress", o.egress, "default outbound network for functions: none or egress")
      ->check(CLI::IsMember({"none", "egress"}));
  serve->add_flag("--freeze-idle", o.freeze_idle,
                  "freeze idle environments (cgroup freezer) and thaw them on dispatch");
  serve->add_option("--sandbox-pool", o.sandbox_pool,
                    "sandboxes kept made ahead of demand, per kind (default 2; 0 = none)");
  serve->add_option("--zygotes", o.zygotes,
                    "pre-start the Python runtime in pooled sandboxes: true (default) or false");
  serve->add_option("--log-level", o.log_level, "trace, debug, info (default), warn, error");
  serve->add_option("--ready-file", o.ready_file, "write the listening port here once serving");
  serve->callback([&] { exit_code = lambent::serve(o); });

  lambent::cli::add_client_commands(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
