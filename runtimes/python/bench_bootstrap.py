"""Measures bootstrap.py against the fake Runtime API: cold start and per-invoke overhead.

    /usr/bin/python3 runtimes/python/bench_bootstrap.py [--runs 30] [--invokes 2000]

cold start  = process spawn -> first GET /next arrives at the server (what Init Duration
              measures), next to `python -c pass` spawn -> exit for the same interpreter.
              Also as CPU time (user+sys, from wait4), which a loaded machine disturbs less
              than wall time: the runtime is killed while it blocks in GET /next.
per invoke  = event written to the runtime -> its /response fully received by the server,
              for a handler that returns its event (includes the fake's own parsing).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "tests", "fakes"))

from fake_runtime_api import FakeRuntimeApi  # noqa: E402

BOOTSTRAP = os.path.join(_HERE, "bootstrap.py")


def _env(api, task_root):
    return {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}


def _ms(values):
    return "min %.2f ms, median %.2f ms" % (min(values) * 1e3, statistics.median(values) * 1e3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--invokes", type=int, default=2000)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()

    task_root = tempfile.mkdtemp(prefix="lambent-pyrt-bench-")
    try:
        with open(os.path.join(task_root, "app.py"), "w") as f:
            f.write("def handler(event, context):\n    return event\n")

        baseline, cold, baseline_cpu, cold_cpu = [], [], [], []
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            t0 = time.monotonic()
            proc = subprocess.Popen([args.python, "-c", "pass"])
            _, _, usage = os.wait4(proc.pid, 0)
            baseline.append(time.monotonic() - t0)
            baseline_cpu.append(usage.ru_utime + usage.ru_stime)
            proc.returncode = 0

            with FakeRuntimeApi() as api:
                t0 = time.monotonic()
                proc = subprocess.Popen([args.python, BOOTSTRAP], cwd=task_root,
                                        env=_env(api, task_root))
                try:
                    cold.append(api.wait_next_calls(1)[0] - t0)
                finally:
                    proc.kill()
                    _, _, usage = os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    cold_cpu.append(usage.ru_utime + usage.ru_stime)

        with FakeRuntimeApi() as api:
            proc = subprocess.Popen([args.python, BOOTSTRAP], cwd=task_root,
                                    env=_env(api, task_root))
            try:
                per_invoke, round_trip = [], []
                for i in range(args.invokes):
                    t0 = time.monotonic()
                    rid = api.push_event({"i": i, "payload": "x" * 100})
                    post = api.wait_result(rid)
                    round_trip.append(time.monotonic() - t0)
                    per_invoke.append(post.received_at - api.served[rid])
                assert api.connections == 1
            finally:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(task_root)

    print("python -c pass            : %s" % _ms(baseline))
    print("spawn -> first GET /next  : %s" % _ms(cold))
    print("  difference of medians   : %.2f ms"
          % ((statistics.median(cold) - statistics.median(baseline)) * 1e3))
    print("CPU: python -c pass       : %s" % _ms(baseline_cpu))
    print("CPU: bootstrap until /next: %s" % _ms(cold_cpu))
    print("  difference of medians   : %.2f ms"
          % ((statistics.median(cold_cpu) - statistics.median(baseline_cpu)) * 1e3))
    print("event out -> response in  : %s (%d invokes)" % (_ms(per_invoke), args.invokes))
    print("push -> result (test side): %s" % _ms(round_trip))


if __name__ == "__main__":
    main()
