"""Runs runtimes/python/bootstrap.py as a subprocess against a fake Runtime API.

Run: /usr/bin/python3 -m pytest tests/runtimes/python
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(_REPO, "tests", "fakes"))

from fake_runtime_api import FakeRuntimeApi  # noqa: E402

BOOTSTRAP = os.path.join(_REPO, "runtimes", "python", "bootstrap.py")
NBSP = "\u00a0"
TIMEOUT = 20


class Runtime:
    """One bootstrap.py process, its task root and the fake API it talks to."""

    def __init__(self, files, handler="app.handler", env=None, zygote=False):
        self.task_root = tempfile.mkdtemp(prefix="lambent-pyrt-")
        for path, source in files.items():
            full = os.path.join(self.task_root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(textwrap.dedent(source))
        self.api = FakeRuntimeApi()
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(BOOTSTRAP)),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_LOG_FORMAT": "Text",
            "TZ": ":UTC",
        }
        full_env.update(env or {})
        if zygote:
            # Started as a pooled sandbox starts it: knowing nothing of its function, in
            # another folder; the function's environment arrives later on the pipe.
            self.elsewhere = tempfile.mkdtemp(prefix="lambent-pyrt-zygote-")
            read_end, write_end = os.pipe()
            self.proc = subprocess.Popen(
                [sys.executable, BOOTSTRAP], cwd=self.elsewhere,
                env={"PATH": full_env["PATH"], "TZ": ":UTC",
                     "LAMBENT_ZYGOTE_FD": str(read_end)},
                pass_fds=(read_end,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            os.close(read_end)
            block = b"".join(f"{k}={v}".encode() + b"\0" for k, v in full_env.items())
            os.write(write_end, block)
            os.close(write_end)
        else:
            self.elsewhere = None
            self.proc = subprocess.Popen(
                [sys.executable, BOOTSTRAP], cwd=self.task_root, env=full_env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        self._out = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True),
        ]
        self._err = []
        for t in self._readers:
            t.start()

    def _pump(self, pipe, which):
        sink = self._out if which == "out" else self._err
        while True:
            data = os.read(pipe.fileno(), 65536)
            with self._cond:
                if data:
                    sink.append(data)
                self._cond.notify_all()
            if not data:
                return

    def wait_stdout(self, predicate, timeout=TIMEOUT):
        """Blocks until predicate(stdout text) is true; returns the text."""
        return self._wait(self._out, predicate, timeout)

    def wait_stderr(self, predicate, timeout=TIMEOUT):
        return self._wait(self._err, predicate, timeout)

    def _wait(self, sink, predicate, timeout):
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(b"".join(sink).decode()), timeout)
            text = b"".join(sink).decode()
            assert ok, "output never matched: %r; stdout=%r stderr=%r" % (
                text, b"".join(self._out), b"".join(self._err))
        return text

    def invoke(self, event=None, **kwargs):
        rid = self.api.push_event({} if event is None else event, **kwargs)
        return self.api.wait_result(rid, timeout=TIMEOUT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._readers:
            t.join()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.api.close()
        shutil.rmtree(self.task_root)
        if self.elsewhere:
            shutil.rmtree(self.elsewhere)


@pytest.fixture
def start():
    runtimes = []

    def _start(files, handler="app.handler", env=None, zygote=False):
        rt = Runtime(files, handler, env, zygote)
        runtimes.append(rt)
        return rt

    yield _start
    for rt in runtimes:
        rt.close()


ECHO = {"app.py": """
    def handler(event, context):
        return {"got": event}
"""}


# --- results ------------------------------------------------------------------------------------


def test_success_posts_json_response(start):
    rt = start(ECHO)
    post = rt.invoke({"name": "x", "n": [1, 2.5, None, True]})
    assert post.kind == "response"
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {"got": {"name": "x", "n": [1, 2.5, None, True]}}


def test_none_result_is_null(start):
    rt = start({"app.py": "def handler(event, context):\n    pass\n"})
    post = rt.invoke()
    assert post.kind == "response"
    assert post.body == b"null"


def test_bytes_result_is_sent_raw(start):
    rt = start({"app.py": "def handler(event, context):\n    return b'\\x00raw'\n"})
    post = rt.invoke()
    assert post.body == b"\x00raw"
    assert post.headers["Content-Type"] == "application/unknown"


def test_decimal_result_is_a_json_number(start):
    rt = start({"app.py": """
        from decimal import Decimal
        def handler(event, context):
            return {"i": Decimal("42"), "f": Decimal("1.5")}
    """})
    assert rt.invoke().body == b'{"i": 42, "f": 1.5}'


def test_unencodable_result_is_marshal_error(start):
    rt = start({"app.py": "def handler(event, context):\n    return {1, 2}\n"})
    post = rt.invoke(request_id="rid-marshal")
    assert post.kind == "error"
    assert post.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": "rid-marshal",
        "stackTrace": [],
    }
    # The runtime stays usable.
    rt.api.push_event({})
    assert rt.api.wait_result(timeout=TIMEOUT).kind == "error"


def test_globals_survive_across_invokes(start):
    rt = start({"app.py": """
        import os
        count = 0
        def handler(event, context):
            global count
            count += 1
            return {"count": count, "pid": os.getpid()}
    """})
    results = [rt.invoke().json() for _ in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert len({r["pid"] for r in results}) == 1


def test_five_megabyte_event_and_result(start):
    rt = start({"app.py": """
        def handler(event, context):
            return {"len": len(event["data"]), "echo": event["data"][::-1]}
    """})
    data = "ab" * (5 * 1024 * 1024 // 2)
    post = rt.invoke({"data": data})
    result = post.json()
    assert result["len"] == len(data)
    assert result["echo"] == data[::-1]


def test_one_keep_alive_connection_for_all_requests(start):
    rt = start(ECHO)
    for i in range(5):
        assert rt.invoke({"i": i}).json() == {"got": {"i": i}}
    assert rt.api.connections == 1


def test_next_request_leaves_with_each_result(start):
    # POST /response (or /error) and the next GET /next in one write: the server finds the GET
    # already there when it reads the result, and answers it once the next event comes.
    rt = start({"app.py": """
        def handler(event, context):
            if event.get("fail"):
                raise ValueError("no")
            return {"got": event}
    """})
    for i in range(4):
        assert rt.invoke({"i": i}).json() == {"got": {"i": i}}
    assert rt.invoke({"fail": True}).kind == "error"
    assert rt.invoke({"i": 5}).json() == {"got": {"i": 5}}
    assert rt.api.pipelined == 6
    assert rt.api.connections == 1


def test_reading_an_answer_allocates_about_its_size():
    # In-process: each receive() used to allocate a fresh 256-KiB bytes object (an mmap, a
    # mremap and a munmap per invoke); answers must be read into the client's own buffer.
    import socket
    import tracemalloc

    sys.path.insert(0, os.path.dirname(BOOTSTRAP))
    try:
        import lambent_runtime
    finally:
        sys.path.pop(0)
    body = b'{"k":"' + b"v" * 100 + b'"}'
    answer = (b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    count = 20
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for _ in range(count):
                conn.sendall(answer)
                time.sleep(0.002)  # one answer per receive, as invokes arrive
            conn.recv(1)  # until the client closes

    thread = threading.Thread(target=serve)
    thread.start()
    client = lambent_runtime.RuntimeApiClient("127.0.0.1:%d" % port)
    try:
        client.send_all([("GET", "/next", b"", ())] * count)
        status, headers, got = client.receive()  # the first one sets up the buffers
        assert (status, headers["lambda-runtime-aws-request-id"], bytes(got)) == (200, "r1", body)
        tracemalloc.start()
        try:
            for _ in range(count - 1):
                status, _, got = client.receive()
                assert (status, bytes(got)) == (200, body)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024
    finally:
        client._close()
        thread.join(TIMEOUT)
        server.close()


def test_reconnects_when_the_server_drops_the_connection(start):
    rt = start(ECHO)
    rt.api.close_after_response = True
    for i in range(4):
        assert rt.invoke({"i": i}).json() == {"got": {"i": i}}
    assert rt.api.connections >= 4
    assert rt.proc.poll() is None


def test_slash_in_module_path_and_sys_path(start):
    rt = start({"src/pkg/app.py": """
        import sys
        def handler(event, context):
            return {"path0": sys.path[0], "path": sys.path}
    """}, handler="src/pkg/app.handler")
    result = rt.invoke().json()
    assert result["path0"] == rt.task_root
    assert os.path.dirname(BOOTSTRAP) not in result["path"]


def test_non_json_content_type_passes_bytes(start):
    rt = start({"app.py": "def handler(event, context):\n    return repr(event)\n"})
    post = rt.invoke("plain", content_type="text/plain")
    assert post.json() == "b'plain'"


# --- handler errors -----------------------------------------------------------------------------


def test_handler_exception_shape_and_one_line_log(start):
    rt = start({"app.py": """
        def helper(x):
            raise ValueError("boom " + x)

        def handler(event, context):
            helper("now")
    """})
    post = rt.invoke(request_id="rid-err")
    assert post.kind == "error"
    app = os.path.join(rt.task_root, "app.py")
    assert post.json() == {
        "errorMessage": "boom now",
        "errorType": "ValueError",
        "requestId": "rid-err",
        "stackTrace": [
            '  File "%s", line 6, in handler\n    helper("now")\n' % app,
            '  File "%s", line 3, in helper\n    raise ValueError("boom " + x)\n' % app,
        ],
    }
    assert "Lambda-Runtime-Function-Error-Type" not in post.headers
    expected = "\r".join([
        "[ERROR] ValueError: boom now",
        "Traceback (most recent call last):",
        NBSP * 2 + 'File "%s", line 6, in handler' % app,
        NBSP * 4 + 'helper("now")',
        NBSP * 2 + 'File "%s", line 3, in helper' % app,
        NBSP * 4 + 'raise ValueError("boom " + x)',
    ]) + "\n"
    out = rt.wait_stdout(lambda s: s.endswith("\n") and "[ERROR]" in s)
    assert out == expected


def test_exception_with_multiline_message_logs_one_line(start):
    rt = start({"app.py": """
        def handler(event, context):
            raise RuntimeError("line one\\nline two")
    """})
    assert rt.invoke().json()["errorMessage"] == "line one\nline two"
    out = rt.wait_stdout(lambda s: s.endswith("\n"))
    assert out.count("\n") == 1
    assert out.startswith("[ERROR] RuntimeError: line one\rline two\rTraceback")


# --- init errors --------------------------------------------------------------------------------


def _assert_init_error(rt, error_type, message):
    post = rt.api.wait_init_error(timeout=TIMEOUT)
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    body = post.json()
    assert body["errorType"] == error_type
    if hasattr(message, "fullmatch"):
        assert message.fullmatch(body["errorMessage"]), body["errorMessage"]
    else:
        assert body["errorMessage"] == message
    assert body["requestId"] == ""
    assert rt.proc.wait(timeout=TIMEOUT) == 1
    assert rt.api.next_calls == []
    return body


def test_malformed_handler_name(start):
    rt = start(ECHO, handler="app")
    body = _assert_init_error(
        rt, "Runtime.MalformedHandlerName",
        "Bad handler 'app': not enough values to unpack (expected 2, got 1)")
    assert body["stackTrace"] == []


def test_import_module_error(start):
    rt = start(ECHO, handler="missing.handler")
    _assert_init_error(rt, "Runtime.ImportModuleError",
                       "Unable to import module 'missing': No module named 'missing'")
    assert rt.wait_stdout(lambda s: s.endswith("\n")).startswith(
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'missing'")


def test_import_error_inside_user_module(start):
    rt = start({"app.py": "import not_installed_dep\n"})
    _assert_init_error(rt, "Runtime.ImportModuleError",
                       "Unable to import module 'app': No module named 'not_installed_dep'")


def test_user_code_syntax_error(start):
    rt = start({"app.py": "x = 1\ndef handler(event, context)\n    pass\n"})
    _assert_init_error(rt, "Runtime.UserCodeSyntaxError",
                       re.compile(r"Syntax error in module 'app': .+ \(app\.py, line 2\)"))


def test_handler_not_found(start):
    rt = start(ECHO, handler="app.nope")
    _assert_init_error(rt, "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'")


def test_exception_at_import_time(start):
    rt = start({"app.py": "raise KeyError('cfg')\n"})
    body = _assert_init_error(rt, "KeyError", "'cfg'")
    assert body["stackTrace"] == [
        '  File "%s", line 1, in <module>\n    raise KeyError(\'cfg\')\n'
        % os.path.join(rt.task_root, "app.py")]


# --- context ------------------------------------------------------------------------------------

CONTEXT_APP = {"app.py": """
    import os
    def handler(event, context):
        first = context.get_remaining_time_in_millis()
        second = first
        while first > 0:  # spin until the clock ticks over a millisecond
            second = context.get_remaining_time_in_millis()
            if second != first:
                break
        cc = context.client_context
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "identity": [context.identity.cognito_identity_id,
                         context.identity.cognito_identity_pool_id],
            "client_context": None if cc is None else {
                "custom": cc.custom, "env": cc.env,
                "client": None if cc.client is None else {
                    n: getattr(cc.client, n) for n in (
                        "installation_id", "app_title", "app_version_name",
                        "app_version_code", "app_package_name")}},
            "tenant_id": context.tenant_id,
            "remaining": [first, second],
            "trace_env": os.environ.get("_X_AMZN_TRACE_ID"),
        }
"""}


def test_context_fields_and_remaining_time(start):
    rt = start(CONTEXT_APP)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:fn:live"
    post = rt.invoke(request_id="rid-ctx", timeout_ms=5000, function_arn=arn,
                     trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
                     tenant_id="tenant-a")
    ctx = post.json()
    assert ctx["aws_request_id"] == "rid-ctx"
    assert ctx["function_name"] == "fn"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == arn
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["log_group_name"] == "/aws/lambda/fn"
    assert ctx["log_stream_name"].startswith("2026/01/01/[$LATEST]")
    assert ctx["identity"] == [None, None]
    assert ctx["client_context"] is None
    assert ctx["tenant_id"] == "tenant-a"
    first, second = ctx["remaining"]
    assert 0 < second < first <= 5000
    assert ctx["trace_env"] == "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"

    # The next invoke has no trace header: the variable must be gone, not stale.
    ctx = rt.invoke(deadline_ms=int(time.time() * 1000) - 1000).json()
    assert ctx["trace_env"] is None
    assert ctx["remaining"][0] == 0
    assert ctx["tenant_id"] is None


def test_client_context_and_cognito_identity(start):
    rt = start(CONTEXT_APP)
    client_context = {
        "client": {"installation_id": "inst", "app_title": "title", "app_version_name": "1.0",
                   "app_version_code": "10", "app_package_name": "com.example"},
        "custom": {"k": "v"},
        "env": {"platform": "Android", "locale": "en_US"},
    }
    ctx = rt.invoke(client_context=client_context,
                    cognito_identity={"cognitoIdentityId": "id-1",
                                      "cognitoIdentityPoolId": "pool-1"}).json()
    assert ctx["client_context"] == client_context
    assert ctx["identity"] == ["id-1", "pool-1"]


def test_bad_client_context_json_is_an_invocation_error(start):
    rt = start(CONTEXT_APP)
    body = rt.invoke(client_context="{not json").json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"].startswith("Unable to parse Client Context JSON: ")


# --- logging ------------------------------------------------------------------------------------

TEXT_LINE = re.compile(
    r"\[(?P<level>[A-Z]+)\]\t(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\t(?P<rid>[^\t]*)\t"
    r"(?P<msg>[^\n]*)\n")

LOGGING_APP = {"app.py": """
    import logging
    import sys
    logging.basicConfig(level=logging.DEBUG)  # a no-op on Lambda: root already has a handler
    logging.warning("at init")
    logger = logging.getLogger("app")

    def handler(event, context):
        logger.debug("debug line")
        logger.info("info line")
        logger.warning("two\\nlines")
        print("printed")
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("caught")
        sys.stdout.write("unterminated")  # must still reach the pipe before the response
        return "ok"
"""}


def test_text_log_format(start):
    rt = start(LOGGING_APP)
    rt.invoke(request_id="rid-log")
    out = rt.wait_stdout(lambda s: s.endswith("unterminated"))
    lines = [line + "\n" for line in out[: -len("unterminated")].split("\n")[:-1]]
    records = [TEXT_LINE.fullmatch(line) for line in lines if line != "printed\n"]
    assert all(records), lines
    assert [(m["level"], m["rid"], m["msg"]) for m in records] == [
        ("WARNING", "", "at init"),
        ("WARNING", "rid-log", "two\rlines"),
        ("ERROR", "rid-log", records[2]["msg"]),
    ]
    assert records[2]["msg"].startswith("caught\rTraceback (most recent call last):\r")
    assert records[2]["msg"].endswith("ZeroDivisionError: division by zero")
    assert "printed\n" in lines
    stamp = time.strptime(records[1]["ts"][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(stamp) - time.mktime(time.gmtime())) < 300  # UTC, not local time


def test_log_level_from_environment(start):
    rt = start(LOGGING_APP, env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
    rt.invoke(request_id="rid-lvl")
    out = rt.wait_stdout(lambda s: s.endswith("unterminated"))
    levels = [m["level"] for m in TEXT_LINE.finditer(out)]
    assert levels == ["WARNING", "DEBUG", "INFO", "WARNING", "ERROR"]


def test_context_log_writes_to_stdout(start):
    rt = start({"app.py": "def handler(e, c):\n    c.log('via context\\n')\n"})
    rt.invoke()
    assert rt.wait_stdout(lambda s: s.endswith("\n")) == "via context\n"


def test_json_log_format(start):
    rt = start({"app.py": """
        import logging
        logger = logging.getLogger("app")
        logger.setLevel(logging.INFO)
        def handler(event, context):
            logger.info("hello %s", "json", extra={"order": 7})
            try:
                {}["k"]
            except KeyError:
                logger.exception("lookup failed")
            raise ValueError("bad")
    """}, env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    assert rt.invoke(request_id="rid-json").kind == "error"
    out = rt.wait_stdout(lambda s: s.count("\n") >= 3)
    info, exc, unhandled = [json.loads(line) for line in out.splitlines()]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info.pop("timestamp"))
    assert info == {"level": "INFO", "message": "hello json", "logger": "app",
                    "requestId": "rid-json", "order": 7}
    assert exc["level"] == "ERROR"
    assert exc["errorType"] == "KeyError"
    assert exc["errorMessage"] == "'k'"
    assert exc["stackTrace"] and exc["stackTrace"][0].startswith('  File "')
    assert exc["location"].endswith(":handler:10")
    assert unhandled["level"] == "ERROR"
    assert unhandled["errorType"] == "ValueError"
    assert unhandled["errorMessage"] == "bad"
    assert unhandled["requestId"] == "rid-json"
    assert len(unhandled["stackTrace"]) == 1


def test_handler_without_logging_does_not_import_it(start):
    heavy = ("logging", "traceback", "http.client", "email", "socket", "selectors")
    rt = start({"app.py": """
        import sys
        def handler(event, context):
            return [m for m in event if m in sys.modules]
    """})
    # Whatever this interpreter's site/.pth files import anyway is not the runtime's doing.
    baseline = subprocess.run(
        [sys.executable, "-c",
         "import json, sys; print(json.dumps([m for m in %r if m in sys.modules]))" % (heavy,)],
        capture_output=True, text=True, check=True).stdout
    assert rt.invoke(list(heavy)).json() == json.loads(baseline)


# --- Runtime API failures -----------------------------------------------------------------------


def test_rejected_result_keeps_the_environment_serving(start):
    rt = start(ECHO)
    rt.api.post_status = 413
    assert rt.invoke({"i": 1}).kind == "response"
    rt.api.post_status = 202
    assert rt.invoke({"i": 2}).json() == {"got": {"i": 2}}
    rt.wait_stderr(lambda s: "HTTP 413" in s)


def test_next_failure_exits_the_runtime(start):
    rt = start(ECHO)
    rt.api.wait_next_calls(1, timeout=TIMEOUT)
    rt.api.close()  # answers the pending GET /next with 500
    assert rt.proc.wait(timeout=TIMEOUT) == 1
    rt.wait_stderr(lambda s: "GET /next answered HTTP 500" in s)


ZYGOTE_APP = {"app.py": """
    import json, logging, os
    def handler(event, context):
        logging.getLogger().warning("from the handler")
        return {"cwd": os.getcwd(), "name": context.function_name,
                "version": context.function_version, "memory": context.memory_limit_in_mb,
                "stream": context.log_stream_name, "foo": os.environ.get("FOO"),
                "zygote_fd": os.environ.get("LAMBENT_ZYGOTE_FD")}
"""}


def test_zygote_becomes_the_function_it_is_given(start):
    rt = start(ZYGOTE_APP, zygote=True,
               env={"FOO": "bar", "AWS_LAMBDA_FUNCTION_VERSION": "7",
                    "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    body = rt.invoke({}).json()
    assert body == {"cwd": os.path.realpath(rt.task_root), "name": "fn", "version": "7",
                    "memory": "256", "foo": "bar", "zygote_fd": None,
                    "stream": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef"}
    # The log format came with the function's environment, after the runtime started.
    line = rt.wait_stdout(lambda t: "from the handler" in t)
    record = json.loads(line.strip().splitlines()[-1])
    assert record["message"] == "from the handler" and record["level"] == "WARNING"
