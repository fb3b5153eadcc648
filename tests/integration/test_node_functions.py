"""The managed Node.js runtime (runtimes/nodejs) driven through the daemon's Invoke API:
environment reuse, variables, the context object, init and handler errors, serialization, large
payloads, concurrency and the log format (issue #3)."""
import base64
import concurrent.futures
import json
import re
import subprocess

import pytest

from test_python_functions import create_raw, invoke_events, lambda_api, request_id, tail

APP = r"""
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';

const ENV_ID = randomUUID();  // once per environment
let inits = 0;
inits += 1;
let calls = 0;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = async (event, context) => {
  calls += 1;
  switch (event.action) {
    case 'state': {
      fs.appendFileSync('/tmp/trail', context.awsRequestId + '\n');
      const trail = fs.readFileSync('/tmp/trail', 'utf8').split('\n').filter(Boolean);
      return { envId: ENV_ID, inits, calls, trail };
    }
    case 'env':
      return { env: process.env, cwd: process.cwd(), version: process.version };
    case 'context': {
      const first = context.getRemainingTimeInMillis();
      await sleep(200);
      const second = context.getRemainingTimeInMillis();
      return {
        remaining: [first, second],
        awsRequestId: context.awsRequestId,
        functionName: context.functionName,
        functionVersion: context.functionVersion,
        invokedFunctionArn: context.invokedFunctionArn,
        memoryLimitInMB: context.memoryLimitInMB,
        logGroupName: context.logGroupName,
        logStreamName: context.logStreamName,
        clientContext: context.clientContext ?? null,
        identity: context.identity ?? null,
      };
    }
    case 'raise':
      throw new RangeError('boom ' + (event.tag ?? ''));
    case 'unserializable':
      return { n: 10n };
    case 'echo':
      return event;
    case 'sleep':
      await sleep(event.ms);
      return ENV_ID;
    case 'log':
      console.log('log line', 42);
      console.info('info line');
      console.warn('warn line');
      console.error('error line');
      console.log('first\nsecond');
      console.error(new Error('logged error'));
      return 'logged';
    default:
      return { unknown: event.action };
  }
};
"""

ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"


@pytest.fixture(scope="module")
def fn(lambent):
    lambent.create("node", {"index.mjs": APP}, runtime="nodejs20.x", handler="index.handler",
                   Timeout=5, MemorySize=256, Environment={"Variables": {"GREETING": "hi there"}})
    return lambent


def call(lambent, payload, name="node", **kw):
    r, body = lambent.invoke(name, payload, **kw)
    return r, json.loads(body)


def host_node_version():
    return subprocess.run(["/usr/bin/node", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip().lstrip("v")


def test_globals_and_tmp_survive_warm_invokes(fn):
    results = [call(fn, {"action": "state"}) for _ in range(3)]
    bodies = [b for _, b in results]
    assert all("FunctionError" not in r for r, _ in results), bodies
    assert len({b["envId"] for b in bodies}) == 1
    assert [b["inits"] for b in bodies] == [1, 1, 1]
    calls = [b["calls"] for b in bodies]
    assert calls == list(range(calls[0], calls[0] + 3))
    assert bodies[-1]["trail"][-3:] == [request_id(r) for r, _ in results]


def test_environment_variables(fn):
    _, body = call(fn, {"action": "env"})
    env = body["env"]
    assert env["GREETING"] == "hi there"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "node"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "index.handler"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/node"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}",
                        env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["TZ"] == ":UTC"
    assert "/opt/nodejs/node_modules" in env["NODE_PATH"].split(":")
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    if fn.isolation == "namespaces":
        assert env["LAMBDA_TASK_ROOT"] == "/var/task"


def test_user_values_of_unreserved_variables_win(lambent):
    app = ("export const handler = async () => "
           "({ env: process.env, offset: new Date(0).getTimezoneOffset() });\n")
    overrides = {"TZ": "JST-9", "LANG": "C.UTF-8", "NODE_PATH": "/var/task/node_modules",
                 "PATH": "/var/task/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": "/var/task/lib"}
    lambent.create("node-overrides", {"index.mjs": app}, runtime="nodejs20.x",
                   handler="index.handler", Environment={"Variables": overrides})
    _, body = call(lambent, {}, name="node-overrides")
    for k, v in overrides.items():
        assert body["env"].get(k) == v, k
    assert body["offset"] == -9 * 60, body


def test_node_runs_with_lambdas_flags_and_a_heap_sized_to_the_function(lambent):
    # Lambda's bootstrap starts node with --expose-gc and --max-old-space-size set from
    # MemorySize; without them global.gc() is missing and V8 grows its heap towards its own
    # default limit until the cgroup kills the function instead of collecting garbage.
    app = ("import v8 from 'node:v8';\n"
           "export const handler = async () => ({ gc: typeof globalThis.gc, "
           "heapMb: v8.getHeapStatistics().heap_size_limit / 1048576, "
           "argv: process.execArgv });\n")
    lambent.create("node-flags", {"index.mjs": app}, runtime="nodejs20.x",
                   handler="index.handler", MemorySize=256)
    _, body = call(lambent, {}, name="node-flags")
    assert body["gc"] == "function", body
    assert "--max-old-space-size=231" in body["argv"], body
    # The old space's 231 MB and the young generation's share: well under node's default.
    assert 231 <= body["heapMb"] < 300, body
    # A heap size of the function's own NODE_OPTIONS wins.
    lambent.boto3().update_function_configuration(
        FunctionName="node-flags",
        Environment={"Variables": {"NODE_OPTIONS": "--max-old-space-size=100"}})
    _, body = call(lambent, {}, name="node-flags")
    assert not any(a.startswith("--max-old-space-size") for a in body["argv"]), body
    assert body["heapMb"] < 200, body


def test_context_fields(fn):
    client_context = {"client": {"installation_id": "inst-1", "app_title": "My App"},
                      "custom": {"k": "v"}, "env": {"platform": "linux"}}
    r, body = call(fn, {"action": "context"},
                   ClientContext=base64.b64encode(json.dumps(client_context).encode()).decode())
    arn = fn.boto3().get_function(FunctionName="node")["Configuration"]["FunctionArn"]
    assert body["awsRequestId"] == request_id(r)
    assert body["functionName"] == "node"
    assert body["functionVersion"] == "$LATEST"
    assert body["invokedFunctionArn"] == arn
    assert body["memoryLimitInMB"] == "256"
    assert body["logGroupName"] == "/aws/lambda/node"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", body["logStreamName"])
    assert body["clientContext"] == client_context
    assert body["identity"] is None
    first, second = body["remaining"]
    assert 4000 < first <= 5000
    assert 150 <= first - second < 1500
    _, body = call(fn, {"action": "context"})
    assert body["clientContext"] is None


def test_qualified_arn_and_version(fn):
    client = fn.boto3()
    version = client.publish_version(FunctionName="node")["Version"]
    r, body = call(fn, {"action": "context"}, Qualifier=version)
    arn = client.get_function(FunctionName="node")["Configuration"]["FunctionArn"]
    assert r["ExecutedVersion"] == version
    assert body["invokedFunctionArn"] == f"{arn}:{version}"
    assert body["functionVersion"] == version


def test_handler_exception_shape(fn):
    r, body = call(fn, {"action": "raise", "tag": "n1"}, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert set(body) == {"errorType", "errorMessage", "trace"}
    assert body["errorType"] == "RangeError"
    assert body["errorMessage"] == "boom n1"
    assert body["trace"][0] == "RangeError: boom n1"
    assert any("index.mjs" in line for line in body["trace"][1:])
    # The runtime logs it as one line: `<ISO>\t<id>\tERROR\tInvoke Error \t{json}`.
    lines = [l for l in tail(r).split("\n") if "\tERROR\t" in l]
    assert len(lines) == 1, tail(r)
    assert re.match(rf"{ISO}\t{request_id(r)}\tERROR\tInvoke Error \t\{{", lines[0])
    _, before = call(fn, {"action": "state"})
    call(fn, {"action": "raise"})
    _, after = call(fn, {"action": "state"})
    assert after["envId"] == before["envId"]


def test_a_crash_is_reported_and_the_next_invoke_gets_a_new_environment(lambent):
    # An exception thrown outside the handler's promise ends the process after its report;
    # the next invoke must not be taken by the dying process (the report is posted alone, not
    # pipelined with a GET /next whose answer would be the next event).
    lambent.create("node-crash", {"index.mjs": """
        import { randomUUID } from 'node:crypto';
        const env = randomUUID();
        export const handler = async (event) => {
          if (event.crash) setTimeout(() => { throw new Error('crashed'); }, 0);
          return event.crash ? new Promise(() => {}) : env;
        };
    """}, runtime="nodejs20.x", handler="index.handler", Timeout=5)
    r, first = call(lambent, {}, name="node-crash")
    assert "FunctionError" not in r, first
    r, crash = call(lambent, {"crash": True}, name="node-crash")
    assert r["FunctionError"] == "Unhandled"
    assert crash["errorMessage"] == "crashed", crash
    for _ in range(3):
        r, body = call(lambent, {}, name="node-crash")
        assert "FunctionError" not in r, body
        assert body != first  # a new environment


def test_unserializable_result(fn):
    # aws-lambda-ric 4.x behaviour (3.x: errorType "Error", same message; see test_official_ric).
    r, body = call(fn, {"action": "unserializable"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.JSONStringifyError"
    assert body["errorMessage"] == "Unable to stringify response body"


def test_five_megabyte_event_and_result(fn):
    data = "0123456789abcdef" * (5 * 1024 * 1024 // 16)
    r, body = call(fn, {"action": "echo", "data": data})
    assert "FunctionError" not in r
    assert body == {"action": "echo", "data": data}


def test_concurrent_invokes_get_separate_environments(lambent):
    lambent.create("node-conc", {"index.mjs": APP}, runtime="nodejs20.x",
                   handler="index.handler", Timeout=10)

    def one(_):
        r, body = call(lambent, {"action": "sleep", "ms": 1000}, name="node-conc")
        assert "FunctionError" not in r, body
        return body

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(one, range(4)))
    assert len(set(ids)) == 4
    for _ in range(4):
        assert call(lambent, {"action": "sleep", "ms": 0}, name="node-conc")[1] in ids


@pytest.mark.parametrize("handler,files,error_type,message", [
    ("index", {"index.mjs": APP}, "Runtime.MalformedHandlerName", "Bad handler"),
    ("missing.handler", {"index.mjs": APP}, "Runtime.ImportModuleError",
     "Error: Cannot find module 'missing'"),
    ("bad.handler", {"bad.mjs": "export const handler = async (event => 1;\n"},
     "Runtime.UserCodeSyntaxError", "SyntaxError: "),
    ("index.nope", {"index.mjs": APP}, "Runtime.HandlerNotFound",
     "index.nope is undefined or not exported"),
])
def test_init_errors(lambent, handler, files, error_type, message):
    name = "node-init-" + handler.replace(".", "-")
    lambent.create(name, files, runtime="nodejs20.x", handler=handler)
    for _ in range(2):  # every cold start fails the same way
        r, body = call(lambent, {}, name=name)
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type, body
        assert body["errorMessage"].startswith(message), body
        assert isinstance(body["trace"], list)


def test_console_format_in_tail_and_log_events(fn):
    r, body = call(fn, {"action": "log"}, LogType="Tail")
    assert body == "logged"
    rid = request_id(r)
    lines = tail(r).split("\n")
    for level, text in [("INFO", "log line 42"), ("INFO", "info line"), ("WARN", "warn line"),
                        ("ERROR", "error line"), ("INFO", "first\rsecond")]:
        assert any(re.fullmatch(rf"{ISO}\t{rid}\t{level}\t{re.escape(text)}", l) for l in lines), \
            (level, text, lines)
    # Multi-line messages (a stack) stay one CloudWatch event.
    events = invoke_events(fn, "/aws/lambda/node", rid)
    stacks = [m for m in events if "Error: logged error" in m]
    assert len(stacks) == 1, events
    assert "index.mjs" in stacks[0]
    assert not any(m.lstrip().startswith("at ") for m in events), events


def test_json_log_format(lambent):
    cfg = create_raw(lambent, "node-json", {"index.mjs": APP}, Runtime="nodejs20.x",
                     Handler="index.handler", LoggingConfig={"LogFormat": "JSON"})
    assert cfg["LoggingConfig"]["LogFormat"] == "JSON"
    r, _ = call(lambent, {"action": "log"}, name="node-json", LogType="Tail")
    rid = request_id(r)
    records = []
    for line in tail(r).split("\n"):
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    info = [x for x in records if x.get("message") == "info line"]
    assert len(info) == 1, tail(r)
    assert info[0]["level"] == "INFO"
    assert info[0]["requestId"] == rid
    assert re.fullmatch(ISO, info[0]["timestamp"])
    warn = [x for x in records if x.get("message") == "warn line"]
    assert warn and warn[0]["level"] == "WARN"


def test_runtime_version_is_the_host_node(fn):
    version = host_node_version()
    cfg = lambda_api(fn, "GET", "/2015-03-31/functions/node")["Configuration"]
    assert version in cfg["RuntimeVersionConfig"]["RuntimeVersionArn"]
    events = fn.boto3("logs").filter_log_events(logGroupName="/aws/lambda/node")["events"]
    starts = [e["message"] for e in events if e["message"].startswith("INIT_START")]
    assert starts and all(f"nodejs:{version}" in m for m in starts), starts
    _, body = call(fn, {"action": "env"})
    assert body["version"] == "v" + version
