"""A fake Lambda Runtime API (2018-06-01) for testing runtime clients.

Standard library only; thread-safe. One instance serves one environment.

    from fake_runtime_api import FakeRuntimeApi

    with FakeRuntimeApi() as api:            # listens on 127.0.0.1:<ephemeral>
        env["AWS_LAMBDA_RUNTIME_API"] = api.address          # "127.0.0.1:PORT"
        ...start the runtime process...
        rid = api.push_event({"name": "x"})  # dict/list -> JSON; str/bytes sent as-is
        post = api.wait_result(rid)          # the /response or /error post for rid
        assert post.kind == "response" and post.json() == {...}
        err = api.wait_init_error()          # the /runtime/init/error post

push_event(body, request_id=None, deadline_ms=None, timeout_ms=3000, function_arn=...,
           trace_id=None, client_context=None, cognito_identity=None, tenant_id=None,
           content_type="application/json", headers=None) -> request_id
    Queues one invocation; the next GET /runtime/invocation/next (or one already waiting)
    receives it. deadline_ms is epoch ms (default now + timeout_ms). client_context and
    cognito_identity may be dicts (JSON-encoded) or strings; None omits the header.
    `headers` adds or overrides /next response headers (a value of None removes one).

Every POST is recorded as a Post(kind, request_id, path, headers, body, trailers, received_at)
with kind "response", "error" or "init_error"; headers is a case-insensitive
email.message.Message, body is bytes, post.json() decodes it. Chunked bodies and trailers are
accepted. Waiters never sleep; they block on a condition variable up to `timeout` seconds
and raise TimeoutError:
    wait_result(request_id=None, timeout=10)  first /response or /error for the id (any id if None)
    wait_init_error(timeout=10)
    wait_next_calls(count, timeout=10)        until `count` GET /next have arrived; returns the
                                              list of their arrival times (time.monotonic())
Attributes: posts (list of Post), next_calls (arrival times), served (request_id -> time the
event was written to the runtime), connections (accepted TCP connections — shows whether a
client keeps one connection alive), pipelined (results whose next request had already arrived
when they were read: the client pipelines). All times are time.monotonic().

Knobs: post_status (default 202) is the status for every POST; close_after_response=True makes
the server close each connection after answering it, without a "Connection: close" header, to
exercise a client's reconnect path (gracefully: requests the client pipelined behind the answered
one are read and dropped, never answered, and must be sent again).

close() (or leaving the `with` block) stops the server; pending GET /next calls get
500 InternalServerError, which tells a runtime to exit.
"""

import json
import queue
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PREFIX = "/2018-06-01/runtime/"
_DEFAULT_ARN = "arn:aws:lambda:us-east-1:000000000000:function:test"
_STOP = object()


class Post:
    def __init__(self, kind, request_id, path, headers, body, trailers):
        self.kind = kind
        self.request_id = request_id
        self.path = path
        self.headers = headers
        self.body = body
        self.trailers = trailers
        self.received_at = time.monotonic()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Post(%s, %s, %r)" % (self.kind, self.request_id, self.body[:200])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The Python runtime's X-Ray cause header may reach 1 MiB.
    max_header_bytes = 2 * 1024 * 1024

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus the client's
        # delayed ACK would add ~40 ms to every reply.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._count_connection()

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.server.fake.close_after_response:
            self.close_connection = True
            # A graceful close: FIN after the reply, then what the client still sends (a request
            # it pipelined) is read and dropped, so the reply is not lost to a reset.
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(2.0)
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass

    def do_GET(self):
        fake = self.server.fake
        if self.path != _PREFIX + "invocation/next":
            self._reply(404, b'{"errorType":"NotFound","errorMessage":"no such route"}')
            return
        fake._record_next()
        item = fake._events.get()
        if item is _STOP:
            fake._events.put(_STOP)  # wake the other waiters too
            self._reply(500, b'{"errorMessage":"Internal Server Error",'
                             b'"errorType":"InternalServerError"}')
            self.close_connection = True
            return
        headers, body = item
        self._reply(200, body, headers)
        fake.served[dict(headers).get("Lambda-Runtime-Aws-Request-Id")] = time.monotonic()

    def do_POST(self):
        fake = self.server.fake
        body, trailers = self._read_body()
        path = self.path
        kind = request_id = None
        if path == _PREFIX + "init/error":
            kind = "init_error"
        elif path.startswith(_PREFIX + "invocation/"):
            parts = path[len(_PREFIX + "invocation/"):].split("/")
            if len(parts) == 2 and parts[1] in ("response", "error"):
                request_id, kind = parts
        if kind is None:
            self._reply(404, b'{"errorType":"NotFound","errorMessage":"no such route"}')
            return
        fake._record_post(Post(kind, request_id, path, self.headers, body, trailers),
                          pipelined=self._next_request_arrived())
        self._reply(fake.post_status, b'{"status":"OK"}',
                    [("Content-Type", "application/json")])

    def _next_request_arrived(self):
        """Whether bytes of another request follow this one already (HTTP/1.1 pipelining)."""
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        except OSError:  # BlockingIOError: nothing more yet
            return False
        finally:
            self.connection.setblocking(True)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            trailers = {}
            while True:
                line = self.rfile.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers[name.strip()] = value.strip()
            return b"".join(chunks), trailers
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A runtime killed mid-request is routine in tests, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeRuntimeApi:
    def __init__(self, host="127.0.0.1"):
        self.posts = []
        self.next_calls = []
        self.served = {}
        self.connections = 0
        self.pipelined = 0
        self.post_status = 202
        self.close_after_response = False
        self._events = queue.Queue()
        self._cond = threading.Condition()
        self._server = _Server((host, 0), _Handler)
        self._server.fake = self
        self.address = "%s:%d" % self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fake-runtime-api", daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._events.put(_STOP)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def push_event(self, body, request_id=None, deadline_ms=None, timeout_ms=3000,
                   function_arn=_DEFAULT_ARN, trace_id=None, client_context=None,
                   cognito_identity=None, tenant_id=None, content_type="application/json",
                   headers=None):
        request_id = request_id or str(uuid.uuid4())
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + timeout_ms
        h = {
            "Content-Type": content_type,
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": function_arn,
            "Lambda-Runtime-Trace-Id": trace_id,
            "Lambda-Runtime-Client-Context": _as_json(client_context),
            "Lambda-Runtime-Cognito-Identity": _as_json(cognito_identity),
            "Lambda-Runtime-Aws-Tenant-Id": tenant_id,
        }
        h.update(headers or {})
        self._events.put(([(k, v) for k, v in h.items() if v is not None], body))
        return request_id

    def wait_result(self, request_id=None, timeout=10):
        def find():
            for post in self.posts:
                if post.kind in ("response", "error") and (
                        request_id is None or post.request_id == request_id):
                    return post
            return None
        return self._wait(find, timeout, "a result for %s" % (request_id or "any request"))

    def wait_init_error(self, timeout=10):
        def find():
            return next((p for p in self.posts if p.kind == "init_error"), None)
        return self._wait(find, timeout, "an init error")

    def wait_next_calls(self, count, timeout=10):
        def find():
            return list(self.next_calls) if len(self.next_calls) >= count else None
        return self._wait(find, timeout, "%d GET /next calls" % count)

    def _wait(self, find, timeout, what):
        with self._cond:
            found = self._cond.wait_for(find, timeout)
            if found is None:
                raise TimeoutError("timed out after %ss waiting for %s; posts so far: %r"
                                   % (timeout, what, self.posts))
            return found

    def _record_post(self, post, pipelined=False):
        with self._cond:
            self.posts.append(post)
            self.pipelined += 1 if pipelined else 0
            self._cond.notify_all()

    def _record_next(self):
        with self._cond:
            self.next_calls.append(time.monotonic())
            self._cond.notify_all()

    def _count_connection(self):
        with self._cond:
            self.connections += 1


def _as_json(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
