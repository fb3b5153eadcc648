"""Startup and per-invoke figures of the Node.js runtime against the fake Runtime API.

Not a test (timings never gate CI): run by hand,
    /usr/bin/python3 tests/runtimes/nodejs/bench_node_runtime.py [--runs 15] [--invokes 2000]

cold: process spawn -> first GET /next arrives, hello handler, versus (a) `node -e 0` spawn ->
      exit and (b) a minimal Node loop (http Agent, no runtime logic) spawn -> first GET /next;
      subject and baselines alternate.
warm: round trip push_event -> response post seen by the fake, versus a minimal Node loop that
      does the same two exchanges with the same http Agent and no runtime logic.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from node_harness import NodeRuntime  # noqa: E402  (also puts tests/fakes on sys.path)
import fake_runtime_api  # noqa: E402,I100

# Python's http.server sends headers and body in two writes; with Nagle on, every exchange waits
# for a delayed ACK (~40 ms) and hides what we measure.
fake_runtime_api._Handler.disable_nagle_algorithm = True


def FakeRuntimeApi():  # noqa: N802 - a quiet fake: killed runtimes make its writes fail
    api = fake_runtime_api.FakeRuntimeApi()
    api._server.handle_error = lambda *args: None
    return api

HELLO = (Path(__file__).resolve().parents[3] / "examples/hello-node/index.mjs").read_text()

MINIMAL_LOOP = r"""
import http from 'node:http';
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json',
                                                 'Content-Length': Buffer.byteLength(body) };
    const req = http.request({ host, port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
for (;;) {
  const { headers, body } = await request('GET', '/2018-06-01/runtime/invocation/next');
  const id = headers['lambda-runtime-aws-request-id'];
  const event = JSON.parse(body);
  await request('POST', `/2018-06-01/runtime/invocation/${id}/response`,
                JSON.stringify({ message: `Hello, ${event.name ?? 'world'}!` }));
}
"""


def cpu_seconds(proc: subprocess.Popen) -> float:
    """Reaps `proc` and returns its user+system CPU time: steadier than wall time on a busy VM."""
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime


# The same bare environment the runtime gets: an inherited NODE_EXTRA_CA_CERTS alone costs Node
# tens of milliseconds at startup.
BARE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

CPU = {"node -e 0": [], "minimal loop": [], "index.mjs": []}


def node_e0() -> float:
    t0 = time.monotonic()
    proc = subprocess.Popen(["node", "-e", "0"], env=BARE_ENV)
    CPU["node -e 0"].append(cpu_seconds(proc))
    return time.monotonic() - t0


def runtime_to_first_next(task_root: Path) -> float:
    with FakeRuntimeApi() as api:
        runtime = NodeRuntime(api, task_root, "index.handler")
        try:
            first = api.wait_next_calls(1, timeout=30)[0]
            runtime.proc.kill()
            CPU["index.mjs"].append(cpu_seconds(runtime.proc))
            return first - runtime.started_at
        finally:
            runtime.close()


def minimal_to_first_next(task_root: Path) -> float:
    (task_root / "minimal.mjs").write_text(MINIMAL_LOOP)
    with FakeRuntimeApi() as api:
        t0 = time.monotonic()
        proc = subprocess.Popen(["node", str(task_root / "minimal.mjs")],
                                env={**BARE_ENV, "AWS_LAMBDA_RUNTIME_API": api.address})
        try:
            first = api.wait_next_calls(1, timeout=30)[0]
            proc.kill()
            CPU["minimal loop"].append(cpu_seconds(proc))
            return first - t0
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()


def warm_round_trips(task_root: Path, invokes: int, minimal: bool) -> list[float]:
    with FakeRuntimeApi() as api:
        if minimal:
            (task_root / "minimal.mjs").write_text(MINIMAL_LOOP)
            proc = subprocess.Popen(["node", str(task_root / "minimal.mjs")],
                                    env={**BARE_ENV, "AWS_LAMBDA_RUNTIME_API": api.address})
        else:
            runtime = NodeRuntime(api, task_root, "index.handler")
        try:
            times = []
            for i in range(invokes + 200):
                t0 = time.monotonic()
                rid = api.push_event({"name": "bench"})
                api.wait_result(rid)
                if i >= 200:  # warm-up
                    times.append(time.monotonic() - t0)
            return times
        finally:
            if minimal:
                proc.kill()
                proc.wait()
            else:
                runtime.close()


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{name:<34} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  min {ms[0]:8.3f}  n={len(ms)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--invokes", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        task_root = Path(tmp)
        (task_root / "index.mjs").write_text(HELLO)
        baseline, limit, subject = [], [], []
        node_e0()
        runtime_to_first_next(task_root)
        for _ in range(args.runs):
            baseline.append(node_e0())
            limit.append(minimal_to_first_next(task_root))
            subject.append(runtime_to_first_next(task_root))
        print(summary("cold baseline: node -e 0 (to exit)", baseline))
        print(summary("cold limit: minimal loop 1st /next", limit))
        print(summary("cold: index.mjs 1st /next", subject))
        for name, base in (("node -e 0", baseline), ("minimal loop", limit)):
            print(f"cold added over {name:<19}"
                  f"{(statistics.median(subject) - statistics.median(base)) * 1000:8.3f} ms (p50)")
        for name, values in CPU.items():
            print(summary(f"cold CPU time: {name}", values[1:]))
        minimal = warm_round_trips(task_root, args.invokes, minimal=True)
        full = warm_round_trips(task_root, args.invokes, minimal=False)
        print(summary("warm baseline: minimal loop", minimal))
        print(summary("warm: index.mjs", full))
        print(f"warm added (p50 difference)         "
              f"{(statistics.median(full) - statistics.median(minimal)) * 1000:8.3f} ms")


if __name__ == "__main__":
    main()
