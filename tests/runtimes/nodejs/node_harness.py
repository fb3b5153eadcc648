"""Harness for the Node.js runtime tests: a minimal fake Runtime API and a runtime process.

The fake serves one environment the way Lambent's daemon does: GET /next long-polls until the
test queues an invocation; POST /response, /error and /init/error are recorded and answered 202.
It is deliberately small and local to these tests (tests/fakes/ may grow a shared one).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import queue
import select
import subprocess
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
RUNTIME_DIR = REPO_ROOT / "runtimes"
RUNTIME_ENTRY = RUNTIME_DIR / "nodejs" / "index.mjs"

API_PREFIX = "/2018-06-01/runtime"


@dataclasses.dataclass
class Post:
    """One POST the runtime made: path, lower-cased headers, raw body, and when it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


class FakeRuntimeApi:
    """Thread-safe fake of one environment's Runtime API on 127.0.0.1:<ephemeral port>."""

    def __init__(self) -> None:
        self._invokes: queue.Queue = queue.Queue()
        self._posts: queue.Queue = queue.Queue()
        self.next_times: list[float] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                if self.path != f"{API_PREFIX}/invocation/next":
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                fake.next_times.append(time.monotonic())
                item = fake._invokes.get()
                if item is None:  # shutdown: drop the connection
                    self.close_connection = True
                    return
                body, headers = item
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake._posts.put(Post(self.path, headers, body, time.monotonic()))
                self._reply(202, b'{"status":"OK"}')

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def queue_invoke(self, event: bytes | str | object, *, request_id: str | None = None,
                     deadline_ms: int | None = None, headers: dict[str, str] | None = None) -> str:
        if isinstance(event, str):
            body = event.encode()
        elif isinstance(event, bytes):
            body = event
        else:
            body = json.dumps(event).encode()
        request_id = request_id or str(uuid.uuid4())
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 30_000
        all_headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn":
                "arn:aws:lambda:us-east-1:123456789012:function:fn",
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
        }
        all_headers.update(headers or {})
        self._invokes.put((body, all_headers))
        return request_id

    def next_post(self, timeout: float = 10.0) -> Post:
        return self._posts.get(timeout=timeout)

    def no_post(self, wait: float) -> bool:
        try:
            self._posts.get(timeout=wait)
            return False
        except queue.Empty:
            return True

    def invoke(self, event, timeout: float = 10.0, **kwargs) -> Post:
        """Queue one invocation and return the runtime's POST for it."""
        request_id = self.queue_invoke(event, **kwargs)
        post = self.next_post(timeout)
        assert f"/invocation/{request_id}/" in post.path, post.path
        return post

    def close(self) -> None:
        for _ in range(4):
            self._invokes.put(None)
        self._server.shutdown()
        self._server.server_close()


class NodeRuntime:
    """`node runtimes/nodejs/index.mjs` in `task_root`, stdout/stderr captured without blocking."""

    def __init__(self, api: FakeRuntimeApi, task_root: Path, handler: str,
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
