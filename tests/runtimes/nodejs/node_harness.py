"""Harness for the Node.js runtime tests: the runtime process, driven against the shared fake
Runtime API in tests/fakes/fake_runtime_api.py (re-exported here as FakeRuntimeApi)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "tests" / "fakes"))
from fake_runtime_api import FakeRuntimeApi  # noqa: E402,F401  (re-exported for the tests)

RUNTIME_DIR = REPO_ROOT / "runtimes"
RUNTIME_ENTRY = RUNTIME_DIR / "nodejs" / "index.mjs"

API_PREFIX = "/2018-06-01/runtime"


class NodeRuntime:
    """`node runtimes/nodejs/index.mjs` in `task_root`, stdout/stderr captured without blocking."""

    def __init__(self, api, task_root: Path, handler: str,
                 extra_env: dict[str, str] | None = None) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(RUNTIME_DIR),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
            "AWS_REGION": "us-east-1",
            "TZ": ":UTC",
        }
        env.update(extra_env or {})
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            ["node", str(RUNTIME_ENTRY)], cwd=task_root, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._out = bytearray()
        self._err = bytearray()

    def read_available(self) -> str:
        """Everything the runtime has written to stdout so far, without waiting for more."""
        self._pump(0)
        return self._out.decode(errors="replace")

    def stderr(self) -> str:
        self._pump(0)
        return self._err.decode(errors="replace")

    def _pump(self, timeout: float) -> None:
        if self.proc.stdout.closed:
            return
        streams = {self.proc.stdout.fileno(): self._out, self.proc.stderr.fileno(): self._err}
        while streams:
            ready, _, _ = select.select(list(streams), [], [], timeout)
            if not ready:
                return
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    streams[fd].extend(chunk)
                else:
                    del streams[fd]
            timeout = 0

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self._pump(0)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._pump(0)
        self.proc.stdout.close()
        self.proc.stderr.close()
