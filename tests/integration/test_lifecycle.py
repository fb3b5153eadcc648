"""The daemon's own life: data survives a restart (and kill -9), SIGTERM ends
it cleanly with exit status 0 and no environment process left behind
(ARCHITECTURE.md "State").
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import make_zip

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")


def control_files():
    with open(os.path.join(FUNCS, "bash-control", "bootstrap")) as f:
        return {"bootstrap": (f.read(), 0o755)}


def pids_matching(marker):
    p = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(x) for x in p.stdout.split()]


def has_logged(server, function, text):
    """Whether a log event of `function` contains `text` (no group yet: not yet)."""
    try:
        events = server.boto3("logs").filter_log_events(
            logGroupName="/aws/lambda/" + function)["events"]
    except ClientError as e:  # no group before the function's environment exists
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return any(text in e["message"] for e in events)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def env_dirs(server):
    d = os.path.join(server.data_dir, "envs")
    return os.listdir(d) if os.path.isdir(d) else []


def memory_cgroup(pid):
    """The memory cgroup folder of a process (v1 "N:memory:/path" or v2 "0::/path"), if it has
    one of its own."""
    try:
        lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path
    for line in lines:
        if line.startswith("0::"):
            return "/sys/fs/cgroup" + line[3:]
    return None


def whoami(server, name, **kw):
    r, body = server.invoke(name, b'{"action":"whoami"}', **kw)
    assert "FunctionError" not in r, body
    return json.loads(body)


def test_functions_and_code_survive_restart(fresh_lambent):
    s = fresh_lambent()
    client = s.boto3()
    created = s.create("durable", control_files(), Publish=True,
                       Environment={"Variables": {"GREETING": "kept"}})
    assert whoami(s, "durable")["greeting"] == "kept"
    before = client.get_function(FunctionName="durable")["Configuration"]

    s.restart()
    client = s.boto3()
    after = client.get_function(FunctionName="durable")["Configuration"]
    for key in ("CodeSha256", "CodeSize", "RevisionId", "Environment", "Runtime", "Handler",
                "Timeout", "MemorySize", "LastModified"):
        assert after[key] == before[key], key
    assert client.get_function_configuration(FunctionName="durable", Qualifier="1")["CodeSha256"] \
        == created["CodeSha256"]
    assert whoami(s, "durable")["greeting"] == "kept"
    assert whoami(s, "durable", Qualifier="1")["version"] == "1"
    assert "durable" in [f["FunctionName"] for f in client.list_functions()["Functions"]]
    # Logs written before the restart are still there.
    events = s.boto3("logs").filter_log_events(logGroupName="/aws/lambda/durable")["events"]
    assert sum(e["message"].startswith("START RequestId:") for e in events) >= 3
    assert s.stop() == 0


def test_unpacked_trees_are_rebuilt_from_blobs(fresh_lambent):
    s = fresh_lambent()
    s.create("rebuilt", control_files())
    assert s.stop() == 0
    tasks = os.path.join(s.data_dir, "tasks")
    for d in os.listdir(tasks):
        shutil.rmtree(os.path.join(tasks, d))
    s.start()
    r, body = s.invoke("rebuilt", b'{"after":"rebuild"}')
    assert "FunctionError" not in r, body
    assert body == b'{"after":"rebuild"}'


def test_created_function_survives_kill_9(fresh_lambent):
    s = fresh_lambent()
    marker = "k9-" + uuid.uuid4().hex[:12]
    s.create("crashproof", control_files(), Environment={"Variables": {"MARKER": marker}})
    whoami(s, "crashproof")
    assert pids_matching("lambent-itest-" + marker)
    assert s.stop(sig=signal.SIGKILL) == -signal.SIGKILL
    s.start()
    assert whoami(s, "crashproof")["instance"]
    assert s.stop() == 0


def test_kill_9_leaves_no_environment_processes(fresh_lambent):
    s = fresh_lambent()
    marker = "orphan-" + uuid.uuid4().hex[:12]
    s.create("orphans", control_files(), Environment={"Variables": {"MARKER": marker}})
    whoami(s, "orphans")
    assert len(pids_matching("lambent-itest-")) and pids_matching(marker)
    s.stop(sig=signal.SIGKILL)
    left = wait_until(lambda: not pids_matching(marker), timeout=10)
    assert left, f"environment processes outlived the daemon: {pids_matching(marker)}"


def test_sigterm_exits_0_and_leaves_no_environment_processes(fresh_lambent):
    s = fresh_lambent()
    marker = "term-" + uuid.uuid4().hex[:12]
    s.create("terminated", control_files(), Environment={"Variables": {"MARKER": marker}})
    whoami(s, "terminated")
    procs = pids_matching(marker)
    assert len(procs) >= 2, procs  # the bootstrap and its child
    # The environment's own state on the host while it runs: its cgroup (as root; the
    # folders under <data>/envs exist only in user-namespace mode).
    cgroup = memory_cgroup(procs[0]) if os.geteuid() == 0 else None
    if cgroup is not None:
        assert "lambent-" in cgroup and os.path.isdir(cgroup), cgroup
    assert s.stop() == 0, s.log()[-3000:]
    assert pids_matching(marker) == [], "environment processes outlived the daemon"
    assert env_dirs(s) == []
    if cgroup is not None:
        assert not os.path.exists(cgroup), f"{cgroup} outlived the daemon"


def test_sigterm_answers_in_flight_invoke(fresh_lambent):
    s = fresh_lambent(extra_args=["--shutdown-grace", "1"])
    marker = "inflight-" + uuid.uuid4().hex[:12]
    s.create("inflight", control_files(), Timeout=30,
             Environment={"Variables": {"MARKER": marker}})
    whoami(s, "inflight")
    result = {}
    # No retry: a retried invoke would meet a closed port and hide the answer.
    client = boto3.client("lambda", endpoint_url=s.endpoint, region_name="us-east-1",
                          aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key,
                          config=Config(retries={"total_max_attempts": 1}, read_timeout=60))

    def call():
        try:
            r = client.invoke(FunctionName="inflight", Payload=b'{"action":"sleep"}')
            result["status"] = r["StatusCode"]
            result["function_error"] = r.get("FunctionError")
            result["body"] = r["Payload"].read()
        except Exception as e:  # noqa: BLE001 - any answer is fine, a hang is not
            result["error"] = e

    t = threading.Thread(target=call)
    t.start()
    # Wait until the invoke is running inside the function.
    assert wait_until(lambda: has_logged(s, "inflight", "sleeping"), timeout=20)
    started = time.monotonic()
    code = s.stop(timeout=30)
    t.join(timeout=30)
    assert not t.is_alive(), "the in-flight invoke got no answer"
    assert code == 0
    assert time.monotonic() - started < 15
    # The invoke outlives the grace period: it is answered, not dropped. Lambent
    # answers 503 ServiceException; the environment's kill can overtake that
    # answer and then the invoke reads as a runtime exit instead (reported).
    if "error" in result:
        assert isinstance(result["error"], ClientError), result
        err = result["error"].response
        assert err["Error"]["Code"] == "ServiceException", err
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    else:
        assert result["status"] == 200 and result["function_error"] == "Unhandled", result
        assert json.loads(result["body"])["errorType"] == "Runtime.ExitError", result
    assert pids_matching(marker) == []


def test_sigterm_refuses_new_requests_on_open_connections(fresh_lambent):
    """During the grace period in-flight invokes get, a keep-alive client cannot start new
    work: its next request is answered 503 ServiceException and its connection closed."""
    s = fresh_lambent(extra_args=["--shutdown-grace", "20"])
    marker = "drain-" + uuid.uuid4().hex[:12]
    s.create("drain", control_files(), Timeout=30, Environment={"Variables": {"MARKER": marker}})
    whoami(s, "drain")
    keep_alive = s.boto3()  # no retries: an answer is seen as it is
    keep_alive.list_functions()  # its connection stays open in the client's pool
    sleeper = s.boto3()
    done = {}

    def call():
        try:
            done["r"] = sleeper.invoke(FunctionName="drain", Payload=b'{"action":"sleep"}')
        except Exception as e:  # noqa: BLE001 - answered either way; a hang is the failure
            done["error"] = e

    t = threading.Thread(target=call)
    t.start()
    assert wait_until(lambda: has_logged(s, "drain", "sleeping"), timeout=20)
    s.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "shutting down" in s.log(), timeout=10)
    # The kept connection is answered, not served; the server closes it after the answer.
    with pytest.raises(ClientError) as e:
        keep_alive.get_function(FunctionName="drain")
    assert e.value.response["Error"]["Code"] == "ServiceException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s.proc.poll() is None, "the grace period is not over: the sleeping invoke holds it"
    # New connections are refused, so nothing can be changed any more either.
    with pytest.raises(Exception):  # noqa: B017 - connection refused, whichever class
        s.boto3().create_function(
            FunctionName="late", Runtime="provided.al2023", Handler="function.handler",
            Role="arn:aws:iam::000000000000:role/test", Code={"ZipFile": make_zip(control_files())})
    assert s.stop(timeout=40) == 0
    t.join(timeout=30)
    assert not t.is_alive()
    s.start()
    names = [f["FunctionName"] for f in s.boto3().list_functions()["Functions"]]
    assert names == ["drain"]


def test_sigterm_while_provisioned_environments_start_exits_0(fresh_lambent):
    # Stopping while many environments are being started leaves work queued on the stopped
    # event loops; those queued handlers still hold environments when the engine is gone, and
    # an environment releases its share of the host memory budget when it is destroyed
    # (a use after free under ASan before the budget was shared).
    s = fresh_lambent()
    s.create("provisioned", control_files(), Publish=True)
    s.boto3().put_provisioned_concurrency_config(
        FunctionName="provisioned", Qualifier="1", ProvisionedConcurrentExecutions=300)
    time.sleep(0.1)
    assert s.stop() == 0, s.log()[-6000:]
    assert "AddressSanitizer" not in s.log()


HANGS_AFTER_ANSWERING = r'''
import http.client
import json
import os
import time
import uuid

ENV_ID = uuid.uuid4().hex


def handler(event, context):
    if event.get("hang"):
        # Answers the invoke itself, then keeps the runtime from asking for the next one.
        c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
        c.request("POST", f"/2018-06-01/runtime/invocation/{context.aws_request_id}/response",
                  json.dumps({"answered_by": ENV_ID}))
        c.getresponse().read()
        time.sleep(100000)
    return {"env_id": ENV_ID}
'''


def test_a_runtime_that_answers_but_never_asks_again_is_stopped_at_the_timeout(fresh_lambent):
    # Work after the response counts against the function's timeout, up to the runtime's
    # next /next: an environment that never gets there was kept Finishing for ever, and the
    # function's later invokes waited for it until the queue timeout (429), every time.
    s = fresh_lambent(extra_args=["--queue-timeout", "30"])
    s.create("answers-then-hangs", {"app.py": HANGS_AFTER_ANSWERING}, runtime="python3.12",
             handler="app.handler", Timeout=2)
    r, body = s.invoke("answers-then-hangs", b'{"hang": true}')
    hung = json.loads(body)["answered_by"]
    t0 = time.monotonic()
    r, body = s.invoke("answers-then-hangs", b"{}")
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    assert json.loads(body)["env_id"] != hung
    # Served once the first environment's 2-s timeout stopped it, not at the queue timeout.
    assert time.monotonic() - t0 < 20
