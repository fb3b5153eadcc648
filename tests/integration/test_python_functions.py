"""The managed Python runtime (runtimes/python) driven through the daemon's Invoke API:
environment reuse, variables, the context object, init and handler errors, marshalling, large
payloads, concurrency and the log format (issue #3)."""
import base64
import concurrent.futures
import json
import os
import re
import subprocess
import time

import pytest

APP = r'''
import json
import logging
import os
import sys
import time
import uuid

ENV_ID = uuid.uuid4().hex  # once per environment
INITS = {"count": 0}
INITS["count"] += 1
CALLS = {"count": 0}
logger = logging.getLogger()


def handler(event, context):
    CALLS["count"] += 1
    action = event.get("action")
    if action == "state":
        with open("/tmp/trail", "a") as f:
            f.write(context.aws_request_id + "\n")
        with open("/tmp/trail") as f:
            trail = f.read().split()
        return {"env_id": ENV_ID, "inits": INITS["count"], "calls": CALLS["count"],
                "trail": trail}
    if action == "env":
        return {"env": dict(os.environ), "cwd": os.getcwd(), "version": sys.version}
    if action == "context":
        first = context.get_remaining_time_in_millis()
        time.sleep(0.2)
        second = context.get_remaining_time_in_millis()
        cc = context.client_context
        return {
            "remaining": [first, second],
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "client_context": None if cc is None else {
                "installation_id": cc.client.installation_id,
                "app_title": cc.client.app_title,
                "custom": cc.custom,
                "env": cc.env,
            },
            "identity": [context.identity.cognito_identity_id,
                         context.identity.cognito_identity_pool_id],
        }
    if action == "raise":
        raise ValueError("boom " + event.get("tag", ""))
    if action == "unserializable":
        return {"s": {1, 2}}
    if action == "echo":
        return event
    if action == "sleep":
        time.sleep(event["seconds"])
        return ENV_ID
    if action == "log":
        print("plain print line")
        logger.setLevel(logging.INFO)
        logging.info("info via logging %s", 42)
        logging.getLogger("mine").warning("warning via a named logger")
        try:
            1 / 0
        except ZeroDivisionError:
            logging.exception("caught one")
        return "logged"
    return {"unknown": action}
'''


def request_id(resp):
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def tail(resp):
    return base64.b64decode(resp["LogResult"]).decode()


@pytest.fixture(scope="module")
def fn(lambent):
    lambent.create("py", {"app.py": APP}, runtime="python3.12", handler="app.handler",
                   Timeout=5, MemorySize=256, Environment={"Variables": {"GREETING": "hi there"}})
    return lambent


def call(lambent, payload, name="py", **kw):
    r, body = lambent.invoke(name, payload, **kw)
    return r, json.loads(body)


def invoke_events(lambent, group, rid):
    """The messages of one invoke's log events, START to END, via the CloudWatch Logs API."""
    logs = lambent.boto3("logs")
    deadline = time.time() + 10
    while True:
        events = logs.filter_log_events(logGroupName=group)["events"]
        start = [e for e in events if e["message"].startswith("START RequestId: " + rid)]
        if start:
            stream = [e["message"] for e in events if e["logStreamName"] == start[0]["logStreamName"]]
            first = stream.index(start[0]["message"])
            ends = [i for i, m in enumerate(stream) if m.startswith("END RequestId: " + rid)]
            if ends:
                return stream[first + 1:ends[0]]
        assert time.time() < deadline, f"no complete log of {rid} in {events}"
        time.sleep(0.1)


def lambda_api(lambent, method, path, body=None):
    """Lambent.lambda_api for calls that must succeed: the decoded body of a 2xx answer."""
    status, out, _ = lambent.lambda_api(method, path, body)
    assert 200 <= status < 300, (status, out)
    return out


def create_raw(lambent, name, files, **config):
    """CreateFunction with fields boto3 here cannot send."""
    from conftest import make_zip
    body = {"FunctionName": name, "Role": "arn:aws:iam::000000000000:role/test",
            "Code": {"ZipFile": base64.b64encode(make_zip(files)).decode()}, **config}
    return lambda_api(lambent, "POST", "/2015-03-31/functions", body)


def host_python_version():
    return subprocess.run(["/usr/bin/python3", "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_globals_and_tmp_survive_warm_invokes(fn):
    results = [call(fn, {"action": "state"}) for _ in range(3)]
    ids = [request_id(r) for r, _ in results]
    bodies = [b for _, b in results]
    assert all("FunctionError" not in r for r, _ in results)
    assert len({b["env_id"] for b in bodies}) == 1
    assert [b["inits"] for b in bodies] == [1, 1, 1]
    calls = [b["calls"] for b in bodies]
    assert calls == list(range(calls[0], calls[0] + 3))
    # /tmp of one environment keeps what earlier invokes wrote.
    assert bodies[-1]["trail"][-3:] == ids


def test_environment_variables(fn):
    _, body = call(fn, {"action": "env"})
    env = body["env"]
    assert env["GREETING"] == "hi there"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "py"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/py"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}",
                        env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == ":UTC"
    assert re.fullmatch(r"[^:]+:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    # The runtime's working directory is the task root.
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    if fn.isolation == "namespaces":
        assert env["LAMBDA_TASK_ROOT"] == "/var/task"
        assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"


ENV_APP = r'''
import os
import time


def handler(event, context):
    return {"env": dict(os.environ), "gmtoff": time.localtime().tm_gmtoff,
            "tzname": list(time.tzname)}
'''

# Variables Lambda sets but lets a function override (LAMBDA-COMPAT.md §4.1, "Unreserved"; TZ
# per the current Lambda Developer Guide). JST-9 is a POSIX zone: no zoneinfo file is needed.
USER_OVERRIDES = {"TZ": "JST-9", "LANG": "C.UTF-8", "PATH": "/var/task/bin:/usr/bin:/bin",
                  "LD_LIBRARY_PATH": "/var/task/lib", "NODE_PATH": "/var/task/node_modules",
                  "PYTHONPATH": "/var/task/vendor"}


def test_user_values_of_unreserved_variables_win(lambent):
    client = lambent.boto3()
    lambent.create("py-overrides", {"app.py": ENV_APP}, runtime="python3.12",
                   handler="app.handler", Environment={"Variables": USER_OVERRIDES})
    _, body = call(lambent, {}, name="py-overrides")
    for k, v in USER_OVERRIDES.items():
        assert body["env"].get(k) == v, k
    assert body["gmtoff"] == 9 * 3600 and body["tzname"][0] == "JST", body
    # UpdateFunctionConfiguration accepts TZ as well, and the next environment gets it.
    client.update_function_configuration(FunctionName="py-overrides",
                                         Environment={"Variables": {"TZ": "EST+5"}})
    _, body = call(lambent, {}, name="py-overrides")
    assert body["env"]["TZ"] == "EST+5"
    assert body["gmtoff"] == -5 * 3600, body
    # Without a value of its own a function runs in UTC.
    client.update_function_configuration(FunctionName="py-overrides",
                                         Environment={"Variables": {}})
    _, body = call(lambent, {}, name="py-overrides")
    assert body["env"]["TZ"] == ":UTC" and body["gmtoff"] == 0, body


def test_context_fields(fn):
    client_context = {"client": {"installation_id": "inst-1", "app_title": "My App"},
                      "custom": {"k": "v"}, "env": {"platform": "linux"}}
    r, body = call(fn, {"action": "context"},
                   ClientContext=base64.b64encode(json.dumps(client_context).encode()).decode())
    arn = fn.boto3().get_function(FunctionName="py")["Configuration"]["FunctionArn"]
    assert body["aws_request_id"] == request_id(r)
    assert body["function_name"] == "py"
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == arn
    assert body["memory_limit_in_mb"] == "256"
    assert body["log_group_name"] == "/aws/lambda/py"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", body["log_stream_name"])
    assert body["client_context"] == {"installation_id": "inst-1", "app_title": "My App",
                                      "custom": {"k": "v"}, "env": {"platform": "linux"}}
    assert body["identity"] == [None, None]
    first, second = body["remaining"]
    assert 4000 < first <= 5000
    assert 150 <= first - second < 1500


def test_context_without_client_context(fn):
    _, body = call(fn, {"action": "context"})
    assert body["client_context"] is None


def test_qualified_arn_and_version(fn):
    client = fn.boto3()
    version = client.publish_version(FunctionName="py")["Version"]
    r, body = call(fn, {"action": "context"}, Qualifier=version)
    arn = client.get_function(FunctionName="py")["Configuration"]["FunctionArn"]
    assert r["ExecutedVersion"] == version
    assert body["invoked_function_arn"] == f"{arn}:{version}"
    assert body["function_version"] == version
    _, body = call(fn, {"action": "context"}, Qualifier="$LATEST")
    assert body["invoked_function_arn"] == arn + ":$LATEST"
    assert body["function_version"] == "$LATEST"


def test_handler_exception_shape(fn):
    r, body = call(fn, {"action": "raise", "tag": "x1"}, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert r["StatusCode"] == 200
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom x1"
    assert body["requestId"] == request_id(r)
    assert any('app.py' in line and "in handler" in line for line in body["stackTrace"])
    # Logged as one line, the traceback joined with \r.
    lines = [l for l in tail(r).split("\n") if l.startswith("[ERROR]")]
    assert len(lines) == 1
    assert lines[0].startswith("[ERROR] ValueError: boom x1\rTraceback (most recent call last):\r")


def test_environment_survives_handler_exception(fn):
    _, before = call(fn, {"action": "state"})
    call(fn, {"action": "raise"})
    _, after = call(fn, {"action": "state"})
    assert after["env_id"] == before["env_id"]


def test_unserializable_result_is_marshal_error(fn):
    r, body = call(fn, {"action": "unserializable"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"] == ("Unable to marshal response: Object of type set is not JSON "
                                    "serializable")


def test_five_megabyte_event_and_result(fn):
    data = "0123456789abcdef" * (5 * 1024 * 1024 // 16)
    r, body = call(fn, {"action": "echo", "data": data})
    assert "FunctionError" not in r
    assert body == {"action": "echo", "data": data}


def test_concurrent_invokes_get_separate_environments(lambent):
    lambent.create("py-conc", {"app.py": APP}, runtime="python3.12", handler="app.handler",
                   Timeout=10)

    def one(_):
        r, body = call(lambent, {"action": "sleep", "seconds": 1}, name="py-conc")
        assert "FunctionError" not in r, body
        return body

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(one, range(4)))
    assert len(set(ids)) == 4
    for _ in range(4):
        assert call(lambent, {"action": "sleep", "seconds": 0}, name="py-conc")[1] in ids


@pytest.mark.parametrize("handler,files,error_type,message", [
    ("app", {"app.py": APP}, "Runtime.MalformedHandlerName", "Bad handler 'app'"),
    ("nothere.handler", {"app.py": APP}, "Runtime.ImportModuleError",
     "Unable to import module 'nothere': No module named 'nothere'"),
    ("bad.handler", {"bad.py": "def handler(event, context:\n    return 1\n"},
     "Runtime.UserCodeSyntaxError", "Syntax error in module 'bad'"),
    ("app.nope", {"app.py": APP}, "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
    # Any other exception at import keeps its own type, as in awslambdaric.
    ("boom.handler", {"boom.py": "raise RuntimeError('at import')\n"}, "RuntimeError", "at import"),
])
def test_init_errors(lambent, handler, files, error_type, message):
    name = "py-init-" + handler.replace(".", "-")
    lambent.create(name, files, runtime="python3.12", handler=handler)
    for _ in range(2):  # every cold start fails the same way
        r, body = call(lambent, {}, name=name, LogType="Tail")
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == error_type
        assert body["errorMessage"].startswith(message), body
        # The init was retried as part of the invoke, as on Lambda: its tail says so, and has
        # the invoke's START, END and REPORT.
        text, rid = tail(r), request_id(r)
        assert f"Phase: invoke\tStatus: error\tError Type: {error_type}" in text, text
        assert f"START RequestId: {rid}" in text and f"END RequestId: {rid}" in text, text
        assert re.search(rf"REPORT RequestId: {rid}\t.*\tStatus: error\tError Type: {error_type}",
                         text), text


def test_logging_format_in_tail_and_log_events(fn):
    r, body = call(fn, {"action": "log"}, LogType="Tail")
    assert body == "logged"
    rid = request_id(r)
    text = tail(r)
    lines = text.split("\n")
    # print() output is passed through untouched, logging goes through Lambda's formatter.
    assert "plain print line" in lines
    ts = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
    assert any(re.fullmatch(rf"\[INFO\]\t{ts}\t{rid}\tinfo via logging 42", l) for l in lines), text
    assert any(re.fullmatch(rf"\[WARNING\]\t{ts}\t{rid}\twarning via a named logger", l)
               for l in lines), text
    exc = [l for l in lines if l.startswith("[ERROR]")]
    assert len(exc) == 1 and re.match(rf"\[ERROR\]\t{ts}\t{rid}\tcaught one\rTraceback", exc[0])

    # CloudWatch Logs API: the logged traceback and the unhandled one are one event each.
    r2, _ = call(fn, {"action": "raise", "tag": "events"})
    between = invoke_events(fn, "/aws/lambda/py", rid) + invoke_events(fn, "/aws/lambda/py",
                                                                       request_id(r2))
    tracebacks = [m for m in between if "Traceback (most recent call last)" in m]
    assert len(tracebacks) == 2, between
    assert any("ZeroDivisionError" in m and "caught one" in m for m in tracebacks)
    assert any(m.startswith("[ERROR] ValueError: boom events\r") for m in tracebacks)


def test_json_log_format(lambent):
    cfg = create_raw(lambent, "py-json", {"app.py": APP}, Runtime="python3.12",
                     Handler="app.handler", LoggingConfig={"LogFormat": "JSON"})
    assert cfg["LoggingConfig"]["LogFormat"] == "JSON"
    r, _ = call(lambent, {"action": "log"}, name="py-json", LogType="Tail")
    rid = request_id(r)
    records = []
    for line in tail(r).split("\n"):
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    info = [x for x in records if x.get("message") == "info via logging 42"]
    assert len(info) == 1, tail(r)
    assert info[0]["level"] == "INFO"
    assert info[0]["requestId"] == rid
    assert info[0]["logger"] == "root"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", info[0]["timestamp"])
    caught = [x for x in records if x.get("message") == "caught one"]
    assert caught and caught[0]["errorType"] == "ZeroDivisionError"
    assert any("1 / 0" in line for line in caught[0]["stackTrace"])


def test_runtime_version_is_the_host_interpreter(fn):
    version = host_python_version()
    cfg = lambda_api(fn, "GET", "/2015-03-31/functions/py")["Configuration"]
    assert version in cfg["RuntimeVersionConfig"]["RuntimeVersionArn"]
    events = fn.boto3("logs").filter_log_events(logGroupName="/aws/lambda/py")["events"]
    starts = [e["message"] for e in events if e["message"].startswith("INIT_START")]
    assert starts and all(f"python:{version}" in m for m in starts), starts
    # ...and it is the interpreter that ran the handler.
    _, body = call(fn, {"action": "env"})
    assert body["version"].startswith(version + " ")


def test_runtime_identifier_maps_to_the_configured_interpreter(fresh_lambent):
    # `--runtime python3.12=PATH` picks the interpreter for one runtime
    # identifier; the version really used is what GetFunction and INIT_START show.
    interpreter = os.path.realpath("/usr/bin/python3")
    version = host_python_version()
    d = fresh_lambent(extra_args=["--runtime", f"python3.12={interpreter}"])
    d.create("mapped", {"app.py": "import sys\ndef handler(e, c):\n    return {'exe': sys.executable}\n"},
             runtime="python3.12", handler="app.handler")
    r, body = d.invoke("mapped", {})
    assert "FunctionError" not in r, body
    assert json.loads(body)["exe"] == interpreter
    cfg = lambda_api(d, "GET", "/2015-03-31/functions/mapped/configuration")
    assert cfg["RuntimeVersionConfig"]["RuntimeVersionArn"].endswith(f"python3.12-{version}")
    logs = d.boto3("logs")
    events = logs.filter_log_events(logGroupName="/aws/lambda/mapped")["events"]
    assert any(e["message"].startswith(f"INIT_START Runtime Version: python:{version}")
               for e in events), [e["message"] for e in events]


def test_bad_runtime_interpreter_setting_is_refused(tmp_path):
    from conftest import lambent_bin
    p = subprocess.run([lambent_bin(), "serve", "--data-dir", str(tmp_path / "d"), "--runtime",
                        "cobol=/usr/bin/cobc", "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--runtime expects RUNTIME=INTERPRETER" in p.stdout + p.stderr


SLOW_INIT = r'''
import os
import time

time.sleep(float(os.environ["INIT_SECONDS"]))
STARTS = 1


def handler(event, context):
    return {"remaining_ms": context.get_remaining_time_in_millis()}
'''


def test_an_init_longer_than_the_init_timeout_is_retried_in_the_invoke(fresh_lambent):
    # Lambda: "If all three tasks do not complete within 10 seconds, Lambda retries the Init
    # phase at the time of the first function invocation with the configured function timeout."
    # Here the init timeout is 1 s and the module takes 2 s to import.
    s = fresh_lambent(extra_args=["--init-timeout", "1"])
    s.create("slow-init", {"app.py": SLOW_INIT}, runtime="python3.12", handler="app.handler",
             Timeout=10, Environment={"Variables": {"INIT_SECONDS": "2"}})
    r, body = s.invoke("slow-init", b"{}", LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    # The retried init came out of the invoke's 10 s.
    assert json.loads(body)["remaining_ms"] < 8500, body
    logs = s.boto3("logs").filter_log_events(logGroupName="/aws/lambda/slow-init")["events"]
    reports = [e["message"] for e in logs if e["message"].startswith("INIT_REPORT")]
    assert any("Phase: init\tStatus: timeout" in m for m in reports), reports
    # The environment that came of the retry stays warm.
    r, body = s.invoke("slow-init", b"{}")
    assert json.loads(body)["remaining_ms"] > 9000, body
