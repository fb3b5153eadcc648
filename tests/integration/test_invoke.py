"""Invoke through the real boto3 and AWS CLI against a real `lambent serve`
(LAMBDA-COMPAT.md §2, §4.5, §5): sync, DryRun, Tail, function errors,
timeouts, crashes, init failures and the request limits.

The functions are custom runtimes: tests/integration/functions/bash-control
(the tutorial's bash + curl loop, steered by the event's "action") and a
small C runtime compiled here with `cc`.
"""
import base64
import json
import os
import re
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import make_zip

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def control_files():
    with open(os.path.join(FUNCS, "bash-control", "bootstrap")) as f:
        return {"bootstrap": (f.read(), 0o755)}


def act(action):
    return json.dumps({"action": action}, separators=(",", ":")).encode()


def client_error(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def tail_of(response):
    return base64.b64decode(response["LogResult"]).decode()


@pytest.fixture(scope="module")
def control(lambent):
    """One bash-control function shared by the tests that do not break it."""
    lambent.create("control", control_files(), Timeout=5)
    return "control"


@pytest.fixture(scope="module")
def native_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("native") / "bootstrap"
    subprocess.run(["cc", "-O1", "-o", str(out), os.path.join(FUNCS, "native", "bootstrap.c")],
                   check=True)
    return make_zip({"bootstrap": (out.read_bytes(), 0o755)})


# ---- success ----

def test_sync_invoke_returns_payload_bytes_and_headers(lambent, control):
    r, body = lambent.invoke(control, b'{"a":1,"s":"x y"}')
    assert r["StatusCode"] == 200
    assert body == b'{"a":1,"s":"x y"}'
    assert r["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in r
    assert "LogResult" not in r


def test_empty_payload_reaches_function_as_empty_object(lambent, control):
    r, body = lambent.invoke(control, b"")
    assert r["StatusCode"] == 200
    assert json.loads(body) == {}


def test_native_c_bootstrap(lambent, native_zip):
    client = lambent.boto3()
    client.create_function(FunctionName="native-c", Runtime="provided.al2023", Handler="x",
                           Role="arn:aws:iam::000000000000:role/test",
                           Code={"ZipFile": native_zip})
    r, body = lambent.invoke("native-c", {"a": 1})
    assert "FunctionError" not in r, body
    assert json.loads(body) == {"native": True, "event": {"a": 1}}
    # A 5 MB event goes in and (wrapped) comes back out: under the 6 MB limits.
    big = {"blob": "x" * (5 * 1024 * 1024)}
    r, body = lambent.invoke("native-c", big)
    assert "FunctionError" not in r, body[:300]
    assert json.loads(body)["event"] == big


def test_hello_bash_example(lambent):
    d = os.path.join(ROOT, "examples", "hello-bash")
    files = {"bootstrap": (open(os.path.join(d, "bootstrap")).read(), 0o755),
             "function.sh": open(os.path.join(d, "function.sh")).read()}
    lambent.create("hello-bash", files, handler="function.handler")
    r, body = lambent.invoke("hello-bash", b'{"a":1}')
    assert "FunctionError" not in r, body
    assert body.decode().strip() == "Echoing request: '{\"a\":1}'"


CURL_RUNTIME = r"""#!/bin/bash
# The shape of examples/hello-bash: curl posts the response. The status lines curl reads for
# that POST go to the log (-v), so the test sees whether a "100 Continue" came first.
set -uo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while true; do
  curl -sS -D /tmp/head -o /tmp/event "$api/next"
  id=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' /tmp/head | tr -d '\r' | cut -d' ' -f2)
  curl -sS -v -o /dev/null --data-binary @/tmp/event "$api/$id/response" 2>&1 | grep '^< HTTP/' >&2
done
"""


def test_curl_gets_100_continue_as_client_and_as_runtime(lambent, tmp_path):
    """curl sends Expect: 100-continue with a body over 1 MiB and waits a second for the
    interim answer before sending it: an invoke through curl, and a shell runtime's
    POST /response through curl, both get "100 Continue" first."""
    lambent.create("curl-runtime", {"bootstrap": (CURL_RUNTIME, 0o755)}, Timeout=30)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pad": "x" * (2 << 20)}))
    out = tmp_path / "out.json"
    p = subprocess.run(
        ["curl", "-sS", "-v", "-o", str(out), "--data-binary", f"@{event}",
         "--aws-sigv4", "aws:amz:us-east-1:lambda", "--user",
         f"{lambent.access_key}:{lambent.secret_key}",
         f"{lambent.endpoint}/2015-03-31/functions/curl-runtime/invocations"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    statuses = [line for line in p.stderr.splitlines() if line.startswith("< HTTP/")]
    assert statuses == ["< HTTP/1.1 100 Continue", "< HTTP/1.1 200 OK"], p.stderr
    assert out.read_bytes() == event.read_bytes()
    # The runtime's curl logs its statuses once its POST is answered, after the invoke's END.
    logs, lines = lambent.boto3("logs"), []
    for _ in range(100):
        events = logs.filter_log_events(logGroupName="/aws/lambda/curl-runtime")["events"]
        lines = [e["message"].rstrip("\n") for e in events if e["message"].startswith("< HTTP/")]
        if len(lines) >= 2:
            break
        time.sleep(0.1)
    assert lines == ["< HTTP/1.1 100 Continue", "< HTTP/1.1 202 Accepted"]


def test_aws_cli_invoke(lambent, control, tmp_path):
    out = tmp_path / "out.json"
    code, meta, err = lambent.aws("lambda", "invoke", "--function-name", control,
                                  "--cli-binary-format", "raw-in-base64-out",
                                  "--payload", '{"via":"cli"}', "--log-type", "Tail", str(out))
    assert code == 0, err
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert json.loads(out.read_bytes()) == {"via": "cli"}
    assert "END RequestId:" in base64.b64decode(meta["LogResult"]).decode()


def test_dry_run_validates_only(lambent, control):
    r, body = lambent.invoke(control, b'{"a":1}', InvocationType="DryRun")
    assert r["StatusCode"] == 204
    assert body == b""
    with pytest.raises(ClientError) as e:
        lambent.invoke("no-such-function", b"{}", InvocationType="DryRun")
    assert client_error(e)[:2] == ("ResourceNotFoundException", 404)


def test_executed_version_of_a_published_version(lambent):
    client = lambent.boto3()
    lambent.create("versioned", control_files(), Publish=True)
    r, body = lambent.invoke("versioned", act("whoami"), Qualifier="1")
    assert r["ExecutedVersion"] == "1", (r, body)
    assert json.loads(body)["version"] == "1", body
    r, body = lambent.invoke("versioned:$LATEST", act("whoami"))
    assert r["ExecutedVersion"] == "$LATEST", (r, body)
    assert json.loads(body)["version"] == "$LATEST", body
    client.delete_function(FunctionName="versioned")


def test_runtime_sees_decoded_client_context_arn_and_deadline(lambent, control):
    before_ms = int(time.time() * 1000)
    r, body = lambent.invoke(control, act("context"),
                             ClientContext=base64.b64encode(b'{"custom":{"k":"v"}}').decode())
    assert "FunctionError" not in r, body
    got = json.loads(body)
    assert got["client_context"] == {"custom": {"k": "v"}}  # decoded, not base64
    assert got["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:control"
    assert got["trace"].startswith("Root=1-")
    # Deadline-Ms is epoch milliseconds: now + Timeout (5 s).
    assert before_ms + 3000 <= got["deadline"] <= int(time.time() * 1000) + 5000 + 1000, got
    _, body = lambent.invoke(control + ":$LATEST", act("context"))
    assert json.loads(body)["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:control:$LATEST"
    assert json.loads(body)["client_context"] is None


def test_client_context_with_line_breaks_reaches_the_runtime_whole(lambent, control):
    # Valid JSON may hold raw CR/LF between tokens; it travels in a header of /next, where a
    # raw line break would cut it short and end the runtime's view of the head.
    cc = b'{\r\n"custom":\r\n\r\n{"k": "v\\r\\n"},\n"env": {}}'
    r, body = lambent.invoke(control, act("context"), ClientContext=base64.b64encode(cc).decode())
    assert "FunctionError" not in r, body
    assert json.loads(body)["client_context"] == {"custom": {"k": "v\r\n"}, "env": {}}
    # The environment's connection is intact: the next invoke gets its own event and context.
    r, body = lambent.invoke(control, act("context"),
                             ClientContext=base64.b64encode(b'{"custom":{"n":2}}').decode())
    assert "FunctionError" not in r, body
    assert json.loads(body)["client_context"] == {"custom": {"n": 2}}


def test_bad_client_context_is_refused(lambent, control):
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, b"{}", ClientContext="not base64 json!")
    assert client_error(e)[:2] == ("InvalidParameterValueException", 400)


def test_concurrent_invokes_get_separate_environments(lambent):
    lambent.create("parallel", control_files())
    results = [None] * 3

    def call(i):
        results[i] = lambent.invoke("parallel", act("nap"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    instances = set()
    for r, body in results:
        assert "FunctionError" not in r, body
        instances.add(json.loads(body)["instance"])
    assert len(instances) == 3  # one invoke at a time per environment


# ---- logs ----

def test_tail_log_has_start_end_report_and_init_duration_once(lambent):
    lambent.create("tailed", control_files())
    first, _ = lambent.invoke("tailed", b'{"n":1}', LogType="Tail")
    second, _ = lambent.invoke("tailed", b'{"n":2}', LogType="Tail")
    for r, cold in ((first, True), (second, False)):
        rid = r["ResponseMetadata"]["RequestId"]
        log = tail_of(r)
        assert f"START RequestId: {rid} Version: $LATEST" in log, log
        assert f"END RequestId: {rid}" in log, log
        assert f"handling {rid}" in log, log  # the function's own output
        report = [line for line in log.splitlines() if line.startswith("REPORT RequestId: " + rid)]
        assert len(report) == 1, log
        fields = report[0].split("\t")
        assert re.fullmatch(r"Duration: \d+\.\d\d ms", fields[1]), report
        assert re.fullmatch(r"Billed Duration: \d+ ms", fields[2]), report
        assert fields[3] == "Memory Size: 128 MB", report
        assert re.fullmatch(r"Max Memory Used: \d+ MB", fields[4]), report
        assert ("Init Duration:" in report[0]) == cold, report
        assert log.index("START") < log.index("END RequestId") < log.index("REPORT")
    # The tail is this invocation's log only.
    assert first["ResponseMetadata"]["RequestId"] not in tail_of(second)


def test_tail_is_at_most_4kb(lambent, control):
    r, _ = lambent.invoke(control, json.dumps({"pad": "y" * 20000}).encode(), LogType="Tail")
    log = base64.b64decode(r["LogResult"])
    assert 0 < len(log) <= 4096
    assert b"REPORT RequestId:" in log


# ---- function errors ----

def test_function_error_is_passed_through_verbatim(lambent, control):
    r, body = lambent.invoke(control, act("error"))
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert body == b'{"errorMessage":"boom \\"quoted\\"","errorType":"MyError","stackTrace":["line 1"]}'
    # The environment survives a handled /error and serves the next invoke.
    r, body = lambent.invoke(control, b'{"after":"error"}')
    assert "FunctionError" not in r
    assert body == b'{"after":"error"}'


def test_empty_response_body_is_passed_through(lambent, control):
    r, body = lambent.invoke(control, act("empty"))
    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert body in (b"", b"null")


def test_timeout_reports_sandbox_timedout_and_next_invoke_gets_fresh_environment(lambent):
    lambent.create("sleepy", control_files(), Timeout=1)
    _, before = lambent.invoke("sleepy", act("whoami"))
    r, body = lambent.invoke("sleepy", act("sleep"), LogType="Tail")
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    err = json.loads(body)
    assert err["errorType"] == "Sandbox.Timedout"
    assert err["errorMessage"] == f"RequestId: {rid} Error: Task timed out after 1.00 seconds"
    log = tail_of(r)
    assert "Task timed out after 1.00 seconds" in log, log
    assert f"END RequestId: {rid}" in log and f"REPORT RequestId: {rid}" in log, log
    # Lambda bills the timeout itself, not the milliseconds the platform took to notice it.
    report = [line for line in log.splitlines() if line.startswith("REPORT RequestId: " + rid)]
    assert len(report) == 1, log
    fields = report[0].split("\t")
    assert float(fields[1].removeprefix("Duration: ").removesuffix(" ms")) >= 1000, report
    assert fields[2] == "Billed Duration: 1000 ms", report
    assert "Status: timeout" in fields, report
    r, after = lambent.invoke("sleepy", act("whoami"))
    assert "FunctionError" not in r, after
    assert json.loads(after)["instance"] != json.loads(before)["instance"]
    assert json.loads(after)["stream"] != json.loads(before)["stream"]


def test_crash_mid_invoke_is_runtime_exit_error(lambent):
    lambent.create("crashy", control_files())
    _, before = lambent.invoke("crashy", act("whoami"))
    r, body = lambent.invoke("crashy", act("crash"))
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    err = json.loads(body)
    assert err["errorType"] == "Runtime.ExitError"
    assert err["errorMessage"] == f"RequestId: {rid} Error: Runtime exited with error: exit status 7"
    r, after = lambent.invoke("crashy", act("whoami"))
    assert "FunctionError" not in r, after
    assert json.loads(after)["instance"] != json.loads(before)["instance"]


def test_bootstrap_exiting_before_next_is_init_failure(lambent):
    lambent.create("init-exit", control_files(), Environment={"Variables": {"INIT_MODE": "exit"}})
    for _ in range(2):  # every invoke tries a new environment and fails the same way
        r, body = lambent.invoke("init-exit", b"{}", LogType="Tail")
        assert r["StatusCode"] == 200
        assert r["FunctionError"] == "Unhandled"
        err = json.loads(body)
        assert err["errorType"] == "Runtime.ExitError"
        assert "exit status 3" in err["errorMessage"]


def test_init_error_posted_by_runtime_is_returned_verbatim(lambent):
    lambent.create("init-error", control_files(), Environment={"Variables": {"INIT_MODE": "error"}})
    r, body = lambent.invoke("init-error", b"{}")
    assert r["FunctionError"] == "Unhandled"
    assert body == b'{"errorType":"Runtime.ConfigError","errorMessage":"init failed on purpose"}'


def test_missing_bootstrap_is_invalid_entrypoint(lambent):
    lambent.create("no-bootstrap", {"function.sh": "echo hi\n"})
    r, body = lambent.invoke("no-bootstrap", b"{}")
    assert r["FunctionError"] == "Unhandled"
    err = json.loads(body)
    assert err["errorType"] == "Runtime.InvalidEntrypoint"
    # As on Lambda, the error of the (retried) init names the invoke it failed.
    rid = r["ResponseMetadata"]["RequestId"]
    assert err["errorMessage"] == (f"RequestId: {rid} Error: Couldn't find valid bootstrap(s): "
                                   "[/var/task/bootstrap /opt/bootstrap]"), err


# ---- request errors ----

def test_payload_over_6mb_is_request_too_large(lambent, control):
    payload = b'"' + b"x" * (6 * 1024 * 1024) + b'"'
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, payload)
    code, status, _ = client_error(e)
    assert (code, status) == ("RequestTooLargeException", 413)


@pytest.mark.parametrize("payload", [b"not json", b'{"a":', b"{'a': 1}", b"\xff\xfe"])
def test_non_json_payload_is_invalid_request_content(lambent, control, payload):
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, payload)
    code, status, message = client_error(e)
    assert (code, status) == ("InvalidRequestContentException", 400)
    assert message.startswith("Could not parse request body into json")


def test_non_json_payload_through_aws_cli(lambent, control, tmp_path):
    code, _, err = lambent.aws("lambda", "invoke", "--function-name", control,
                               "--cli-binary-format", "raw-in-base64-out",
                               "--payload", "not json", str(tmp_path / "out"), check=False)
    assert code != 0
    assert "InvalidRequestContentException" in err
    assert "when calling the Invoke operation" in err


def test_invalid_log_type_is_validation_exception(lambent, control):
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, b"{}", LogType="Bogus")
    code, status, message = client_error(e)
    assert (code, status) == ("ValidationException", 400)
    assert message == ("1 validation error detected: Value 'Bogus' at 'logType' failed to satisfy "
                       "constraint: Member must satisfy enum value set: [None, Tail]")
    # The same shape as for an invalid InvocationType.
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, b"{}", InvocationType="Bogus")
    code, status, message = client_error(e)
    assert (code, status) == ("ValidationException", 400)
    assert message == ("1 validation error detected: Value 'Bogus' at 'invocationType' failed to "
                       "satisfy constraint: Member must satisfy enum value set: "
                       "[Event, RequestResponse, DryRun]")
    # Both modelled values are accepted; None asks for no log.
    r, body = lambent.invoke(control, b'{"log":"none"}', LogType="None")
    assert body == b'{"log":"none"}' and "LogResult" not in r
    r, body = lambent.invoke(control, b'{"log":"tail"}', LogType="Tail")
    assert body == b'{"log":"tail"}' and "REPORT RequestId:" in tail_of(r)


def test_invoke_unknown_function_is_404(lambent):
    with pytest.raises(ClientError) as e:
        lambent.invoke("never-created", b"{}")
    code, status, message = client_error(e)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:never-created"


def test_invoke_unknown_qualifier_is_404(lambent, control):
    with pytest.raises(ClientError) as e:
        lambent.invoke(control, b"{}", Qualifier="42")
    assert client_error(e)[:2] == ("ResourceNotFoundException", 404)
