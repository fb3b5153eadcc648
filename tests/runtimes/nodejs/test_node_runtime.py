"""Tests of runtimes/nodejs/index.mjs against a fake Runtime API.

Run: /usr/bin/python3 -m pytest tests/runtimes/nodejs -q
Each test starts `node runtimes/nodejs/index.mjs` with handlers written to a temp dir and checks
the exchanges on the wire and the lines on stdout.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from node_harness import API_PREFIX, FakeRuntimeApi, NodeRuntime  # noqa: E402

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TRACE_ID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"


@pytest.fixture
def api():
    fake = FakeRuntimeApi()
    yield fake
    fake.close()


@pytest.fixture
def start(api, tmp_path):
    """start({path: source}, handler, env=None) -> NodeRuntime; processes are killed at teardown."""
    runtimes: list[NodeRuntime] = []

    def _start(files: dict[str, str], handler: str, env: dict[str, str] | None = None):
        for rel, source in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        runtime = NodeRuntime(api, tmp_path, handler, env)
        runtimes.append(runtime)
        return runtime

    yield _start
    for runtime in runtimes:
        runtime.close()


def invoke(api, event, timeout=10, **kwargs):
    """Queue one invocation and return the runtime's /response or /error post for it."""
    request_id = api.push_event(event, **kwargs)
    return api.wait_result(request_id, timeout=timeout)


def log_lines(runtime: NodeRuntime) -> list[str]:
    return [line for line in runtime.read_available().split("\n") if line]


# --- programming models and module kinds ---------------------------------------------------------


def test_async_handler_esm_mjs(api, start):
    start({"index.mjs": """
        export const handler = async (event, context) => ({ hello: event.name, id: context.awsRequestId });
    """}, "index.handler")
    post = invoke(api, {"name": "world"}, request_id="req-1")
    assert post.path == f"{API_PREFIX}/invocation/req-1/response"
    assert post.headers["content-type"] == "application/json"
    assert post.json() == {"hello": "world", "id": "req-1"}


def test_commonjs_js_without_package_json(api, start):
    start({"app.js": """
        const os = require('os');  // require() only works if this is loaded as CommonJS
        exports.handler = async (event) => ({ cjs: typeof module !== 'undefined', v: event.v });
    """}, "app.handler")
    assert invoke(api, {"v": 1}).json() == {"cjs": True, "v": 1}


def test_js_with_package_json_type_module_is_esm(api, start):
    start({
        "package.json": '{"type": "module"}',
        "app.js": """
            const value = await Promise.resolve(7);  // top-level await: ESM only
            export async function handler() { return { esm: typeof require === 'undefined', value }; }
        """,
    }, "app.handler")
    assert invoke(api, {}).json() == {"esm": True, "value": 7}


def test_cjs_extension(api, start):
    start({
        "package.json": '{"type": "module"}',
        "lib.cjs": "module.exports.handler = async () => 'from cjs';",
    }, "lib.handler")
    assert invoke(api, {}).json() == "from cjs"


def test_nested_export_in_subdirectory(api, start):
    start({"src/app.mjs": """
        export const outer = { inner: { fn: async () => 'nested' } };
    """}, "src/app.outer.inner.fn")
    assert invoke(api, {}).json() == "nested"


def test_directory_with_index(api, start):
    start({"mydir/index.js": "exports.handler = async () => 'dir index';"}, "mydir.handler")
    assert invoke(api, {}).json() == "dir index"


def test_top_level_await_in_mjs_runs_before_first_next(api, start):
    runtime = start({"index.mjs": """
        await new Promise((r) => setTimeout(r, 50));
        globalThis.ready = true;
        export const handler = async () => globalThis.ready === true;
    """}, "index.handler")
    assert invoke(api, {}).json() is True
    assert api.next_calls[0] - runtime.started_at > 0.05


def test_callback_handler_waits_for_empty_event_loop(api, start):
    runtime = start({"index.js": """
        exports.handler = (event, context, callback) => {
          setTimeout(() => console.log('timer fired'), 300);
          callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
        };
    """}, "index.handler")
    post = invoke(api, {})
    assert post.json() == {"waited": True}
    # The response is only posted once the timer ran and the loop drained.
    assert "timer fired" in runtime.read_available()


def test_callback_handler_without_waiting(api, start):
    runtime = start({"index.js": """
        exports.handler = (event, context, callback) => {
          context.callbackWaitsForEmptyEventLoop = false;
          setTimeout(() => console.log('timer fired'), 3000);
          callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
        };
    """}, "index.handler")
    started = time.monotonic()
    post = invoke(api, {})
    assert post.json() == {"waited": False}
    assert post.received_at - started < 3.0
    assert "timer fired" not in runtime.read_available()


def test_callback_error_and_first_call_wins(api, start):
    start({"index.js": """
        exports.handler = (event, context, callback) => {
          callback(new TypeError('bad input'));
          callback(null, 'ignored');
          context.succeed('also ignored');
        };
    """}, "index.handler")
    post = invoke(api, {})
    assert post.path.endswith("/error")
    assert post.json()["errorType"] == "TypeError"


def test_context_succeed_posts_immediately(api, start):
    start({"index.js": """
        exports.handler = (event, context) => {
          setTimeout(() => {}, 3000);
          context.succeed('legacy');
        };
    """}, "index.handler")
    started = time.monotonic()
    post = invoke(api, {})
    assert post.json() == "legacy"
    assert post.received_at - started < 3.0


def test_sync_handler_that_never_calls_back_gets_null(api, start):
    start({"index.js": "exports.handler = (event, context, callback) => {};"}, "index.handler")
    assert invoke(api, {}).json() is None


def test_async_handler_whose_promise_never_settles(api, start):
    start({"index.mjs": "export const handler = async () => new Promise(() => {});"}, "index.handler")
    post = invoke(api, {})
    assert post.path.endswith("/error")
    assert post.json()["errorType"] == "Runtime.NodeJsExit"
    assert "a Promise that was never settled" in post.json()["errorMessage"], post.json()


# --- results and errors --------------------------------------------------------------------------


def test_undefined_result_is_null(api, start):
    start({"index.mjs": "export const handler = async () => undefined;"}, "index.handler")
    post = invoke(api, {})
    assert post.body == b"null"


def test_thrown_error_shape_uses_trace(api, start):
    start({"index.mjs": """
        class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } }
        export const handler = async () => { throw new MyError('boom "quoted"'); };
    """}, "index.handler")
    post = invoke(api, {}, request_id="req-err")
    assert post.path == f"{API_PREFIX}/invocation/req-err/error"
    assert post.headers["content-type"] == "application/json"
    body = post.json()
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == "MyError"
    assert body["errorMessage"] == 'boom "quoted"'
    assert body["trace"][0] == 'MyError: boom "quoted"'
    assert any("index.mjs" in frame for frame in body["trace"][1:])
    cause = json.loads(post.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["type"] == "MyError"


def test_error_with_text_beyond_latin1_is_reported_with_its_xray_cause(api, start):
    # Header values are bytes: the cause's non-Latin-1 characters travel as JSON \u escapes
    # (the http module refused them, and the runtime exited instead of reporting the error).
    start({"index.mjs": "export const handler = async () => { throw new Error('болт 🔩'); };"},
          "index.handler")
    post = invoke(api, {})
    assert post.kind == "error"
    assert post.json()["errorMessage"] == "болт 🔩"
    cause = json.loads(post.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["message"] == "болт 🔩"
    assert invoke(api, {}).kind == "error"  # still running


def test_sync_throw_is_reported(api, start):
    start({"index.js": "exports.handler = () => { throw new RangeError('sync'); };"},
          "index.handler")
    body = invoke(api, {}).json()
    assert (body["errorType"], body["errorMessage"]) == ("RangeError", "sync")


def test_rejected_promise(api, start):
    start({"index.mjs": "export const handler = () => Promise.reject(new Error('rejected'));"},
          "index.handler")
    body = invoke(api, {}).json()
    assert (body["errorType"], body["errorMessage"]) == ("Error", "rejected")


def test_non_error_throws(api, start):
    start({"index.mjs": """
        export const handler = async (event) => {
          if (event.kind === 'string') throw 'plain string';
          if (event.kind === 'number') throw 42;
          return Promise.reject(undefined);
        };
    """}, "index.handler")
    assert invoke(api, {"kind": "string"}).json() == {
        "errorType": "string", "errorMessage": "plain string", "trace": []}
    assert invoke(api, {"kind": "number"}).json() == {
        "errorType": "number", "errorMessage": "42", "trace": []}
    assert invoke(api, {"kind": "undefined"}).json() == {
        "errorType": "string", "errorMessage": "handled", "trace": []}


def test_unserializable_result(api, start):
    start({"index.mjs": """
        export const handler = async () => { const o = {}; o.self = o; return o; };
    """}, "index.handler")
    post = invoke(api, {})
    assert post.path.endswith("/error")
    body = post.json()
    assert body["errorType"] == "Runtime.JSONStringifyError"
    assert body["errorMessage"] == "Unable to stringify response body"


def test_uncaught_exception_during_invoke_reports_and_exits(api, start):
    runtime = start({"index.mjs": """
        export const handler = () => new Promise(() => { setTimeout(() => { throw new Error('late'); }, 10); });
    """}, "index.handler")
    post = invoke(api, {})
    assert post.path.endswith("/error")
    assert post.json()["errorMessage"] == "late"
    assert runtime.wait() == 129
    assert "Uncaught Exception" in runtime.read_available()


def test_unhandled_rejection_during_invoke(api, start):
    runtime = start({"index.mjs": """
        export const handler = () => { Promise.reject(new Error('nobody listens')); return new Promise(() => {}); };
    """}, "index.handler")
    body = invoke(api, {}).json()
    assert body["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert body["errorMessage"] == "Error: nobody listens"
    assert runtime.wait() == 128


# --- init errors -----------------------------------------------------------------------------------


INIT_ERROR_CASES = [
    ("no_dot", {"index.mjs": "export const handler = async () => 1;"}, "index",
     "Runtime.MalformedHandlerName", "Bad handler"),
    ("dot_dot", {"index.mjs": "export const handler = async () => 1;"}, "../x/index.handler",
     "Runtime.MalformedHandlerName", "'../x/index.handler' is not a valid handler name"),
    ("missing_module", {}, "missing.handler",
     "Runtime.ImportModuleError", "Error: Cannot find module 'missing'\nRequire stack:"),
    ("missing_dependency", {"index.js": "require('not-installed'); exports.handler = () => 1;"},
     "index.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'not-installed'"),
    ("syntax_error", {"index.mjs": "export const handler = async () => {;"}, "index.handler",
     "Runtime.UserCodeSyntaxError", "SyntaxError: "),
    ("undefined_export", {"index.mjs": "export const other = 1;"}, "index.handler",
     "Runtime.HandlerNotFound", "index.handler is undefined or not exported"),
    ("not_a_function", {"index.mjs": "export const handler = 42;"}, "index.handler",
     "Runtime.HandlerNotFound", "index.handler is not a function"),
    ("throw_at_load", {"index.js": "throw new Error('init failed');"}, "index.handler",
     "Error", "init failed"),
]


@pytest.mark.parametrize("files,handler,error_type,message_prefix",
                         [case[1:] for case in INIT_ERROR_CASES],
                         ids=[case[0] for case in INIT_ERROR_CASES])
def test_init_errors(api, start, files, handler, error_type, message_prefix):
    runtime = start(files, handler)
    post = api.wait_init_error()
    assert post.path == f"{API_PREFIX}/init/error"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    body = post.json()
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message_prefix), body["errorMessage"]
    assert isinstance(body["trace"], list) and body["trace"]
    assert runtime.wait() == 129
    assert api.next_calls == []  # never asked for work
    assert re.search(rf"^{ISO}\tundefined\tERROR\tUncaught Exception \t\{{", runtime.read_available(),
                     re.M)


# --- context ---------------------------------------------------------------------------------------


def test_context_fields(api, start):
    start({"index.mjs": """
        export const handler = async (event, context) => ({
          functionName: context.functionName,
          functionVersion: context.functionVersion,
          memoryLimitInMB: context.memoryLimitInMB,
          logGroupName: context.logGroupName,
          logStreamName: context.logStreamName,
          invokedFunctionArn: context.invokedFunctionArn,
          awsRequestId: context.awsRequestId,
          clientContext: context.clientContext ?? 'undefined',
          identity: context.identity ?? 'undefined',
          tenantId: context.tenantId ?? 'undefined',
          wait: context.callbackWaitsForEmptyEventLoop,
          legacy: [typeof context.succeed, typeof context.fail, typeof context.done],
          trace: process.env._X_AMZN_TRACE_ID ?? 'unset',
        });
    """}, "index.handler")
    body = invoke(api, {}, request_id="id-1", trace_id=TRACE_ID, tenant_id="tenant-7",
                  client_context={"custom": {"k": "v"}, "env": {}, "client": {}},
                  cognito_identity={"cognitoIdentityId": "c1", "cognitoIdentityPoolId": "p1"},
                  function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn:live").json()
    assert body == {
        "functionName": "fn",
        "functionVersion": "$LATEST",
        "memoryLimitInMB": "128",
        "logGroupName": "/aws/lambda/fn",
        "logStreamName": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
        "awsRequestId": "id-1",
        "clientContext": {"custom": {"k": "v"}, "env": {}, "client": {}},
        "identity": {"cognitoIdentityId": "c1", "cognitoIdentityPoolId": "p1"},
        "tenantId": "tenant-7",
        "wait": True,
        "legacy": ["function", "function", "function"],
        "trace": TRACE_ID,
    }
    # Optional headers absent: undefined fields; trace id removed from the environment.
    body = invoke(api, {}).json()
    assert body["clientContext"] == "undefined"
    assert body["identity"] == "undefined"
    assert body["tenantId"] == "undefined"
    assert body["trace"] == "unset"


def test_bad_client_context_is_an_invocation_error(api, start):
    start({"index.mjs": "export const handler = async () => 'unreachable';"}, "index.handler")
    post = invoke(api, {}, client_context="{not json")
    assert post.path.endswith("/error")
    assert post.json()["errorMessage"].startswith("Cannot parse ClientContext as json")


def test_remaining_time_decreases(api, start):
    start({"index.mjs": """
        export const handler = async (event, context) => {
          const first = context.getRemainingTimeInMillis();
          await new Promise((r) => setTimeout(r, 50));
          return [first, context.getRemainingTimeInMillis()];
        };
    """}, "index.handler")
    deadline = int(time.time() * 1000) + 5000
    first, second = invoke(api, {}, deadline_ms=deadline).json()
    assert 0 < first <= 5000
    assert second <= first - 45


# --- logging ---------------------------------------------------------------------------------------


def test_console_text_format(api, start):
    runtime = start({"index.mjs": """
        console.log('at load');
        export const handler = async () => {
          console.log('hello %s %d', 'there', 42, { a: 1 });
          console.info('info'); console.warn('warn'); console.error('error');
          console.debug('debug'); console.trace('trace');
          console.log('line one\\nline two');
          return 'ok';
        };
    """}, "index.handler")
    invoke(api, {}, request_id="rid-1")
    # Everything logged during the invoke is already in the pipe when the response arrives.
    lines = log_lines(runtime)
    assert re.fullmatch(rf"{ISO}\tundefined\tINFO\tat load", lines[0])
    assert re.fullmatch(rf"{ISO}\trid-1\tINFO\thello there 42 \{{ a: 1 \}}", lines[1])
    levels = [line.split("\t")[2] for line in lines[2:7]]
    assert levels == ["INFO", "WARN", "ERROR", "DEBUG", "TRACE"]
    assert lines[7].endswith("\tINFO\tline one\rline two")
    assert len(lines) == 8


def test_console_json_format_and_level_filter(api, start):
    runtime = start({"index.mjs": """
        export const handler = async () => {
          console.info('dropped'); console.debug('dropped');
          console.warn('kept', 1); console.error(new Error('oops'));
          console.log('multi\\nline');
          return 'ok';
        };
    """}, "index.handler", {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"})
    invoke(api, {}, request_id="rid-j")
    records = [json.loads(line) for line in log_lines(runtime)]
    assert len(records) == 2
    warn, error = records
    assert list(warn) == ["timestamp", "level", "requestId", "message"]
    assert re.fullmatch(ISO, warn["timestamp"])
    assert (warn["level"], warn["requestId"], warn["message"]) == ("WARN", "rid-j", "kept 1")
    assert error["level"] == "ERROR"
    assert error["message"]["errorType"] == "Error"
    assert error["message"]["errorMessage"] == "oops"


def test_json_multiline_message_stays_one_line(api, start):
    runtime = start({"index.mjs": """
        export const handler = async () => { console.log('a\\nb'); return 1; };
    """}, "index.handler", {"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    invoke(api, {})
    lines = log_lines(runtime)
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "a\nb"


def test_process_stdout_writes_are_flushed_before_response(api, start):
    runtime = start({"index.mjs": """
        export const handler = async () => {
          process.stdout.write('x'.repeat(1 << 20) + '\\nraw end\\n');
          return 'ok';
        };
    """}, "index.handler")
    request_id = api.push_event({})
    # 1 MiB exceeds the pipe buffer: keep draining stdout while waiting for the POST.
    deadline = time.monotonic() + 10
    while True:
        runtime.read_available()
        try:
            post = api.wait_result(request_id, timeout=0.05)
            break
        except TimeoutError:
            assert time.monotonic() < deadline
    assert f"/{request_id}/response" in post.path
    assert runtime.read_available().endswith("raw end\n")


def test_invoke_error_is_logged(api, start):
    runtime = start({"index.mjs": "export const handler = async () => { throw new Error('x'); };"},
                    "index.handler")
    invoke(api, {}, request_id="rid-e")
    line = log_lines(runtime)[-1]
    assert re.fullmatch(rf"{ISO}\trid-e\tERROR\tInvoke Error \t\{{.*\}}", line)
    details = json.loads(line.split("\t", 4)[4])
    assert details["errorType"] == "Error" and details["errorMessage"] == "x"


# --- lifecycle and sizes -----------------------------------------------------------------------


def test_globals_kept_across_invokes(api, start):
    runtime = start({"index.mjs": """
        let count = 0;
        export const handler = async () => ++count;
    """}, "index.handler")
    assert [invoke(api, {}).json() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert runtime.proc.poll() is None


def test_five_megabyte_event_and_result(api, start):
    start({"index.mjs": """
        export const handler = async (event) => ({ echo: event.data, length: event.data.length });
    """}, "index.handler")
    data = "é" + "x" * (5 * 1024 * 1024)
    body = invoke(api, {"data": data}, timeout=30).json()
    assert body["length"] == len(data)
    assert body["echo"] == data


def test_invalid_json_event_is_an_invocation_error(api, start):
    start({"index.mjs": "export const handler = async () => 'unreachable';"}, "index.handler")
    post = invoke(api, b"{not json")
    assert post.path.endswith("/error")
    assert post.json()["errorType"] == "SyntaxError"


def test_hello_node_example(api, start):
    source = (Path(__file__).resolve().parents[3] / "examples/hello-node/index.mjs").read_text()
    start({"index.mjs": source}, "index.handler")
    assert invoke(api, {"name": "Lambent"}).json() == {"message": "Hello, Lambent!"}
    assert invoke(api, {}).json() == {"message": "Hello, world!"}


# --- Runtime API connection ------------------------------------------------------------------------


def test_one_keep_alive_connection_for_all_exchanges(api, start):
    start({"index.mjs": "export const handler = async (e) => e;"}, "index.handler")
    for i in range(5):
        assert invoke(api, {"i": i}).json() == {"i": i}
    api.wait_next_calls(6)
    assert api.connections == 1


def test_results_and_errors_go_out_with_the_next_get(api, start):
    # POST /response (or /error) and the next GET /next in one write: the server finds the GET
    # already there when it reads the result, and can answer both together.
    start({"index.mjs": """
        export const handler = async (e) => { if (e.fail) throw new Error('no'); return e; };
    """}, "index.handler")
    for i in range(3):
        assert invoke(api, {"i": i}).json() == {"i": i}
    assert invoke(api, {"fail": True}).kind == "error"
    assert invoke(api, {"i": 4}).json() == {"i": 4}
    api.wait_next_calls(6)
    assert api.pipelined == 5
    assert api.connections == 1


def test_an_empty_event_body_reaches_the_handler_path(api, start):
    # A reply whose head ends the bytes received and declares Content-Length: 0 is complete.
    start({"index.mjs": "export const handler = async (e) => e;"}, "index.handler")
    post = invoke(api, b"")
    assert post.kind == "error"  # JSON.parse('') fails in the invocation, not in the client
    assert post.json()["errorType"] == "SyntaxError"
    assert invoke(api, {"i": 1}).json() == {"i": 1}


def test_reconnects_when_server_drops_idle_connection(api, start):
    api.close_after_response = True
    start({"index.mjs": "export const handler = async (e) => e;"}, "index.handler")
    for i in range(3):
        assert invoke(api, {"i": i}).json() == {"i": i}


def test_rejected_post_ends_the_runtime(api, start):
    api.post_status = 400
    runtime = start({"index.mjs": "export const handler = async () => 1;"}, "index.handler")
    invoke(api, {})
    assert runtime.wait() == 1
    assert "answered 400" in runtime.stderr()


# --- response streaming ----------------------------------------------------------------------------


def test_streaming_http_integration_response(api, start):
    start({"index.mjs": """
        export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
          const stream = awslambda.HttpResponseStream.from(responseStream, {
            statusCode: 201, headers: { 'x-a': 'b' }, cookies: ['c=1'] });
          stream.write('hello ');
          stream.write(context.awsRequestId);
          stream.end();
        });
    """}, "index.handler")
    post = invoke(api, {}, request_id="s-1")
    assert post.kind == "response"
    assert post.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert post.headers["transfer-encoding"] == "chunked"
    assert post.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, _, rest = post.body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-a": "b"}, "cookies": ["c=1"]}
    assert rest == b"hello s-1"
    assert not post.trailers.get("Lambda-Runtime-Function-Error-Type")
    assert invoke(api, {}, request_id="s-2").body.endswith(b"hello s-2")


def test_streaming_error_mid_stream_goes_to_trailers(api, start):
    start({"index.mjs": """
        export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
          responseStream.write('partial');
          throw new TypeError('midstream');
        });
    """}, "index.handler")
    post = invoke(api, {})
    assert post.headers["content-type"] == "application/octet-stream"
    assert post.body == b"partial"
    assert post.trailers["Lambda-Runtime-Function-Error-Type"] == "TypeError"
    body = json.loads(base64.b64decode(post.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert (body["errorType"], body["errorMessage"]) == ("TypeError", "midstream")
