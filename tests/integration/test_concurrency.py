"""Lambent's concurrency model through the real daemon, boto3 and the AWS CLI
(issue #5, LAMBDA-COMPAT.md concurrency): 429 TooManyRequestsException with the
right Reason at the account and reserved limits, reserved 0, the unreserved
minimum, provisioned environments ready before the first invoke and replaced
when killed, memory-budget eviction and its bounded queue, queue order, and no
starvation of one function under the load of another.

These are tests of behaviour, not timings: every wait for state polls with a
deadline, and "in flight" is observed through the environments' runtime
processes (each function's runtime renames itself after its MARKER) rather
than guessed from a clock.
"""
import base64
import hashlib
import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

# One environment per ENV_ID; MARKER (a function environment variable) renames
# the runtime process (its comm) so the host can find and kill it.
APP = r'''
import ctypes
import os
import time
import uuid

ENV_ID = uuid.uuid4().hex
MARKER = os.environ.get("MARKER")
if MARKER:
    ctypes.CDLL(None).prctl(15, MARKER.encode(), 0, 0, 0)  # PR_SET_NAME


def handler(event, context):
    started = time.time()
    if event.get("exit"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    return {"env_id": ENV_ID, "seq": event.get("seq"), "started": started,
            "function": context.function_name,
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
'''


def marker_of(name):
    """The default MARKER of a function: its runtime's process name (15 characters at most)."""
    return "c-" + hashlib.sha1(name.encode()).hexdigest()[:12]


def create(server, name, memory=128, timeout=60, **kw):
    kw.setdefault("Environment", {"Variables": {"MARKER": marker_of(name)}})
    return server.create(name, {"app.py": APP}, runtime="python3.12", handler="app.handler",
                         MemorySize=memory, Timeout=timeout, **kw)


def call(server, name, payload=None, **kw):
    r, body = server.invoke(name, json.dumps(payload or {}).encode(), **kw)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    return json.loads(body)


def throttled(server, name, payload=None, **kw):
    """Invokes expecting a 429; returns botocore's parsed error response."""
    with pytest.raises(ClientError) as e:
        server.invoke(name, json.dumps(payload or {}).encode(), **kw)
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429, err
    assert err["Error"]["Code"] == "TooManyRequestsException", err
    assert err["Type"] == "User", err
    return err


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def wait_until(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def env_pids(*names):
    """The runtime processes of these functions' environments (see create)."""
    return set().union(*(pids_named(marker_of(n)) for n in names))


def pids_named(comm):
    p = subprocess.run(["pgrep", "-x", comm], capture_output=True, text=True)
    return {int(x) for x in p.stdout.split()}


class Background:
    """One invoke on a thread; .result() re-raises what it raised."""

    def __init__(self, server, name, payload):
        self.value = self.error = None
        self.thread = threading.Thread(target=self._run, args=(server, name, payload), daemon=True)
        self.thread.start()

    def _run(self, server, name, payload):
        try:
            self.value = call(server, name, payload)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self.error = e

    def running(self):
        return self.thread.is_alive()

    def result(self, timeout=90):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background invoke did not finish"
        if self.error:
            raise self.error
        return self.value


class Load:
    """`clients` threads invoking one function back to back (each `payload`) while the
    `with` block runs; `done` counts the invokes served. Entering waits until `warm` are."""

    def __init__(self, server, name, payload, clients, warm):
        self.server, self.name, self.payload = server, name, json.dumps(payload).encode()
        self.clients, self.warm = clients, warm
        self.done, self.errors = 0, []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _hammer(self):
        client = self.server.boto3()
        while not self.stop.is_set():
            try:
                r = client.invoke(FunctionName=self.name, Payload=self.payload)
                assert r["StatusCode"] == 200 and "FunctionError" not in r, r["Payload"].read()
                with self.lock:
                    self.done += 1
            except Exception as e:  # noqa: BLE001 - reported by __exit__
                self.errors.append(e)
                return

    def __enter__(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(self.clients)
        self.workers = [self.pool.submit(self._hammer) for _ in range(self.clients)]
        wait_until(lambda: self.done >= self.warm or self.errors, 60, f"load on {self.name}")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.result()
        self.pool.shutdown()
        assert self.errors == [], self.errors


def start_holding(server, names, seconds):
    """Starts one long invoke per name on functions with no environment yet and
    returns once each has an environment of its own (so holds its slot)."""
    before = env_pids(*names)
    holds = [Background(server, n, {"sleep": seconds}) for n in names]
    wait_until(lambda: len(env_pids(*names) - before) >= len(names), 60,
               f"{len(names)} environments for the holding invokes")
    for h in holds:
        assert h.running(), "a holding invoke finished early: " + repr(h.error or h.value)
    return holds


# ---------------------------------------------------------------- account limit

def test_account_limit_throttles_at_once_with_reason(fresh_lambent):
    s = fresh_lambent(extra_args=["--concurrency", "2"])
    client = s.boto3()
    for n in ("acct-a", "acct-b", "acct-c"):
        create(s, n)
    settings = client.get_account_settings()["AccountLimit"]
    assert settings["ConcurrentExecutions"] == 2
    assert settings["UnreservedConcurrentExecutions"] == 2

    holds = start_holding(s, ["acct-a", "acct-b"], 6)
    # The account is full: a third invoke of any unreserved function is
    # rejected at once (a throttle, not a queue), while both holds still run.
    for name in ("acct-a", "acct-c"):
        err = throttled(s, name)
        assert err["Reason"] == "ConcurrentInvocationLimitExceeded", err
        assert err["message"] == "Rate Exceeded."
        assert err["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    assert all(h.running() for h in holds), "the 429 waited for a slot instead of failing at once"

    for h in holds:
        assert h.result()["function"] in ("acct-a", "acct-b")
    # Slots come back when invokes finish.
    assert call(s, "acct-c")["function"] == "acct-c"

    # No reservation can leave fewer than 100 unreserved.
    with pytest.raises(ClientError) as e:
        client.put_function_concurrency(FunctionName="acct-a", ReservedConcurrentExecutions=1)
    assert error_code(e) == "InvalidParameterValueException"


# ---------------------------------------------------------------- reserved concurrency

def test_reserved_limit_throttles_only_that_function(lambent):
    client = lambent.boto3()
    create(lambent, "res-one")
    create(lambent, "res-other")
    r = client.put_function_concurrency(FunctionName="res-one", ReservedConcurrentExecutions=1)
    assert r["ReservedConcurrentExecutions"] == 1
    try:
        assert client.get_function_concurrency(FunctionName="res-one")[
            "ReservedConcurrentExecutions"] == 1
        assert client.get_function(FunctionName="res-one")["Concurrency"] == {
            "ReservedConcurrentExecutions": 1}

        (hold,) = start_holding(lambent, ["res-one"], 6)
        err = throttled(lambent, "res-one")
        assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", err
        assert err["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
        # Other functions are not limited by this reservation.
        assert call(lambent, "res-other")["function"] == "res-other"
        assert hold.running(), "the 429 waited for the reserved slot"
        assert hold.result()["function"] == "res-one"
        assert call(lambent, "res-one")["function"] == "res-one"
    finally:
        client.delete_function_concurrency(FunctionName="res-one")


def test_reserved_zero_throttles_every_invoke(lambent):
    client = lambent.boto3()
    create(lambent, "res-zero")
    client.put_function_concurrency(FunctionName="res-zero", ReservedConcurrentExecutions=0)
    try:
        assert client.get_function_concurrency(FunctionName="res-zero")[
            "ReservedConcurrentExecutions"] == 0
        for _ in range(3):
            err = throttled(lambent, "res-zero")
            assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", err
        # Nothing was started for them.
        assert env_pids("res-zero") == set()
    finally:
        client.delete_function_concurrency(FunctionName="res-zero")
    assert "Concurrency" not in client.get_function(FunctionName="res-zero")
    assert call(lambent, "res-zero")["function"] == "res-zero"


def test_unreserved_minimum_and_account_settings(lambent):
    client = lambent.boto3()
    create(lambent, "min-a")
    create(lambent, "min-b")
    _, out, _ = lambent.aws("lambda", "get-account-settings")
    assert out["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert out["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    try:
        with pytest.raises(ClientError) as e:
            client.put_function_concurrency(FunctionName="min-a", ReservedConcurrentExecutions=901)
        assert error_code(e) == "InvalidParameterValueException"
        assert "UnreservedConcurrentExecution" in e.value.response["Error"]["Message"]
        assert "Concurrency" not in client.get_function(FunctionName="min-a")

        client.put_function_concurrency(FunctionName="min-a", ReservedConcurrentExecutions=900)
        _, out, _ = lambent.aws("lambda", "get-account-settings")
        assert out["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
        # Exactly 100 left: nothing more may be reserved elsewhere...
        code, _, err = lambent.aws("lambda", "put-function-concurrency", "--function-name",
                                   "min-b", "--reserved-concurrent-executions", "1", check=False)
        assert code != 0 and "InvalidParameterValueException" in err, err
        # ...but the same function may change its own reservation.
        client.put_function_concurrency(FunctionName="min-a", ReservedConcurrentExecutions=850)
        client.put_function_concurrency(FunctionName="min-b", ReservedConcurrentExecutions=50)
        assert client.get_account_settings()["AccountLimit"][
            "UnreservedConcurrentExecutions"] == 100
    finally:
        client.delete_function_concurrency(FunctionName="min-a")
        client.delete_function_concurrency(FunctionName="min-b")
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    # Deleting a function gives its reservation back.
    client.put_function_concurrency(FunctionName="min-b", ReservedConcurrentExecutions=900)
    client.delete_function(FunctionName="min-b")
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_slots_come_back_after_timeouts_and_crashes(lambent, fresh_lambent):
    """A slot held by an invoke that timed out or whose runtime died is
    released: otherwise a function (or the account) would throttle forever."""
    client = lambent.boto3()
    create(lambent, "res-fail", timeout=1)
    client.put_function_concurrency(FunctionName="res-fail", ReservedConcurrentExecutions=1)
    try:
        for bad in ({"sleep": 5}, {"exit": True}):
            r, body = lambent.invoke("res-fail", json.dumps(bad).encode())
            assert r.get("FunctionError") == "Unhandled", body
            assert call(lambent, "res-fail")["function"] == "res-fail"
    finally:
        client.delete_function_concurrency(FunctionName="res-fail")

    s = fresh_lambent(extra_args=["--concurrency", "1"])
    create(s, "acct-fail", timeout=1)
    for bad in ({"sleep": 5}, {"exit": True}):
        r, body = s.invoke("acct-fail", json.dumps(bad).encode())
        assert r.get("FunctionError") == "Unhandled", body
        assert call(s, "acct-fail")["function"] == "acct-fail"


# ---------------------------------------------------------------- provisioned concurrency

def test_provisioned_environment_ready_before_first_invoke_and_replaced(lambent):
    client = lambent.boto3()
    marker = "lcc-" + uuid.uuid4().hex[:10]  # comm is at most 15 characters
    create(lambent, "prov", Publish=True, Environment={"Variables": {"MARKER": marker}})
    assert pids_named(marker) == set()

    with pytest.raises(ClientError) as e:
        client.put_provisioned_concurrency_config(FunctionName="prov", Qualifier="$LATEST",
                                                  ProvisionedConcurrentExecutions=1)
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        client.get_provisioned_concurrency_config(FunctionName="prov", Qualifier="1")
    assert error_code(e) == "ProvisionedConcurrencyConfigNotFoundException"

    r = client.put_provisioned_concurrency_config(FunctionName="prov", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert r["RequestedProvisionedConcurrentExecutions"] == 1
    assert r["Status"] in ("IN_PROGRESS", "READY")
    try:
        def ready():
            c = client.get_provisioned_concurrency_config(FunctionName="prov", Qualifier="1")
            return c if c["Status"] == "READY" else None
        c = wait_until(ready, 60, "provisioned concurrency READY")
        assert c["RequestedProvisionedConcurrentExecutions"] == 1
        assert c["AvailableProvisionedConcurrentExecutions"] == 1
        assert c["AllocatedProvisionedConcurrentExecutions"] == 1
        assert "LastModified" in c
        # Started ahead of traffic: the runtime is up before any invoke.
        (first_pid,) = wait_until(lambda: pids_named(marker), 10, "the provisioned runtime")

        listed = client.list_provisioned_concurrency_configs(FunctionName="prov")[
            "ProvisionedConcurrencyConfigs"]
        assert [x["FunctionArn"].rsplit(":", 1)[1] for x in listed] == ["1"]
        assert listed[0]["FunctionArn"].endswith(":function:prov:1")

        r, body = lambent.invoke("prov", b"{}", Qualifier="1", LogType="Tail")
        first = json.loads(body)
        assert first["init_type"] == "provisioned-concurrency", first
        tail = base64.b64decode(r["LogResult"]).decode()
        report = [ln for ln in tail.splitlines() if ln.startswith("REPORT RequestId:")]
        assert report and "Init Duration" not in report[0], tail
        assert pids_named(marker) == {first_pid}, "the invoke did not use the provisioned runtime"

        # Killed from outside, the environment is replaced ahead of traffic again.
        os.kill(first_pid, signal.SIGKILL)
        wait_until(lambda: pids_named(marker) - {first_pid}, 60, "a replacement environment")
        wait_until(ready, 60, "READY again after the kill")
        second = call(lambent, "prov", Qualifier="1")
        assert second["init_type"] == "provisioned-concurrency"
        assert second["env_id"] != first["env_id"]
    finally:
        r = client.delete_provisioned_concurrency_config(FunctionName="prov", Qualifier="1")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.list_provisioned_concurrency_configs(FunctionName="prov")[
        "ProvisionedConcurrencyConfigs"] == []
    # Idle provisioned environments stop when the configuration goes.
    wait_until(lambda: not pids_named(marker), 30, "the provisioned runtime to stop")
    # Without provisioned concurrency environments start on demand.
    assert call(lambent, "prov", Qualifier="1")["init_type"] == "on-demand"
    assert call(lambent, "prov")["init_type"] == "on-demand"


def test_provisioned_on_alias_and_bounded_by_reserved(lambent):
    client = lambent.boto3()
    create(lambent, "prov-alias", Publish=True)
    client.create_alias(FunctionName="prov-alias", Name="live", FunctionVersion="1")
    client.put_function_concurrency(FunctionName="prov-alias", ReservedConcurrentExecutions=1)
    try:
        with pytest.raises(ClientError) as e:
            client.put_provisioned_concurrency_config(FunctionName="prov-alias", Qualifier="live",
                                                      ProvisionedConcurrentExecutions=2)
        assert error_code(e) == "InvalidParameterValueException"
        client.put_provisioned_concurrency_config(FunctionName="prov-alias", Qualifier="live",
                                                  ProvisionedConcurrentExecutions=1)
        wait_until(lambda: client.get_provisioned_concurrency_config(
            FunctionName="prov-alias", Qualifier="live")["Status"] == "READY", 60, "READY")
        got = call(lambent, "prov-alias", Qualifier="live")
        assert got["init_type"] == "provisioned-concurrency"
    finally:
        client.delete_provisioned_concurrency_config(FunctionName="prov-alias", Qualifier="live")
        client.delete_function_concurrency(FunctionName="prov-alias")


def test_provisioned_scales_up_and_down(lambent):
    client = lambent.boto3()
    marker = "lcc-" + uuid.uuid4().hex[:10]
    create(lambent, "prov-scale", Publish=True, Environment={"Variables": {"MARKER": marker}})
    status = lambda: client.get_provisioned_concurrency_config(  # noqa: E731
        FunctionName="prov-scale", Qualifier="1")
    try:
        client.put_provisioned_concurrency_config(FunctionName="prov-scale", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=2)
        wait_until(lambda: status()["Status"] == "READY", 60, "READY with 2")
        assert status()["AvailableProvisionedConcurrentExecutions"] == 2
        assert len(pids_named(marker)) == 2
        client.put_provisioned_concurrency_config(FunctionName="prov-scale", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=1)
        wait_until(lambda: len(pids_named(marker)) == 1, 30, "one environment to stop")
        c = wait_until(lambda: (lambda c: c if c["Status"] == "READY" else None)(status()), 30,
                       "READY with 1")
        assert c["RequestedProvisionedConcurrentExecutions"] == 1
        assert c["AvailableProvisionedConcurrentExecutions"] == 1
    finally:
        client.delete_provisioned_concurrency_config(FunctionName="prov-scale", Qualifier="1")
    wait_until(lambda: not pids_named(marker), 30, "the provisioned runtime to stop")


def test_provisioned_concurrency_comes_out_of_reserved_or_unreserved_concurrency(fresh_lambent):
    # Account limit 103: at least 100 stays unreserved. A function with reserved concurrency
    # provisions within it, over all its versions; the others provision out of the
    # unreserved concurrency, all functions together.
    s = fresh_lambent(extra_args=["--concurrency", "103"])
    client = s.boto3()
    for n in ("pc-a", "pc-b", "pc-c"):
        create(s, n, Publish=True)
    client.update_function_configuration(FunctionName="pc-c", Description="second version")
    wait_until(lambda: client.get_function_configuration(
        FunctionName="pc-c")["LastUpdateStatus"] == "Successful", 30, "the update")
    assert client.publish_version(FunctionName="pc-c")["Version"] == "2"
    client.put_function_concurrency(FunctionName="pc-c", ReservedConcurrentExecutions=1)

    def put(name, qualifier, n):
        return client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=n)

    def refused(name, qualifier, n):
        with pytest.raises(ClientError) as e:
            put(name, qualifier, n)
        assert error_code(e) == "InvalidParameterValueException", e.value.response
        return e.value.response["Error"]["Message"]

    put("pc-c", "1", 1)
    assert "reservedConcurrentExecution" in refused("pc-c", "2", 1)  # 2 > reserved 1
    put("pc-a", "1", 2)  # 103 - 1 reserved - 2 = 100 unreserved left
    assert "below its minimum value of [100]" in refused("pc-b", "1", 1)
    put("pc-a", "1", 1)  # replaces pc-a's own config: counted once
    put("pc-b", "1", 1)
    configs = {(n, q): client.get_provisioned_concurrency_config(FunctionName=n, Qualifier=q)
               for n, q in (("pc-a", "1"), ("pc-b", "1"), ("pc-c", "1"))}
    assert {k: v["RequestedProvisionedConcurrentExecutions"] for k, v in configs.items()} == {
        ("pc-a", "1"): 1, ("pc-b", "1"): 1, ("pc-c", "1"): 1}
    with pytest.raises(ClientError) as e:
        client.get_provisioned_concurrency_config(FunctionName="pc-c", Qualifier="2")
    assert error_code(e) == "ProvisionedConcurrencyConfigNotFoundException"


def test_delete_function_lets_a_running_invoke_finish(fresh_lambent):
    # As on AWS: deleting a function fails nothing that is already running in it.
    s = fresh_lambent()
    create(s, "deleted")
    running = Background(s, "deleted", {"sleep": 2, "seq": 7})
    logs = s.boto3("logs")

    def started():
        try:
            events = logs.filter_log_events(logGroupName="/aws/lambda/deleted")["events"]
        except ClientError as e:  # no group until the environment's first line is stored
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return any("START RequestId" in e["message"] for e in events)
    wait_until(started, 60, "the invoke to start")
    s.boto3().delete_function(FunctionName="deleted")
    assert running.result()["seq"] == 7
    with pytest.raises(ClientError) as e:
        s.invoke("deleted", b"{}")
    assert error_code(e) == "ResourceNotFoundException"
    wait_until(lambda: not env_pids("deleted"), 30, "the environment to stop after its invoke")


# ---------------------------------------------------------------- memory budget

def test_memory_budget_evicts_least_recently_used_idle(fresh_lambent):
    s = fresh_lambent(extra_args=["--memory-budget", "256", "--queue-timeout", "2"])
    for n in ("mem-a", "mem-b", "mem-c"):
        create(s, n, memory=128)
    a1 = call(s, "mem-a")["env_id"]
    b1 = call(s, "mem-b")["env_id"]
    # The budget holds two environments; the third needs A's (the least
    # recently used idle one) to go.
    c1 = call(s, "mem-c")["env_id"]
    assert call(s, "mem-b")["env_id"] == b1, "B (more recently used than A) was evicted"
    a2 = call(s, "mem-a")["env_id"]
    assert a2 != a1, "A was not evicted for C: its environment is still warm"
    # A's comeback evicted C (idle longer than B).
    assert call(s, "mem-b")["env_id"] == b1
    assert call(s, "mem-c")["env_id"] != c1
    assert "evicted: host memory budget" in s.log()


def test_memory_budget_never_evicts_provisioned_environments(fresh_lambent):
    s = fresh_lambent(extra_args=["--memory-budget", "256", "--queue-timeout", "2"])
    client = s.boto3()
    marker = "lcc-" + uuid.uuid4().hex[:10]
    create(s, "kept", Publish=True, Environment={"Variables": {"MARKER": marker}})
    create(s, "odd-b")
    create(s, "odd-c")
    client.put_provisioned_concurrency_config(FunctionName="kept", Qualifier="1",
                                              ProvisionedConcurrentExecutions=1)
    wait_until(lambda: client.get_provisioned_concurrency_config(
        FunctionName="kept", Qualifier="1")["Status"] == "READY", 60, "READY")
    (pid,) = pids_named(marker)
    b1 = call(s, "odd-b")["env_id"]
    # The provisioned environment has been idle longest, yet B's goes.
    c1 = call(s, "odd-c")["env_id"]
    assert pids_named(marker) == {pid}
    assert call(s, "kept", Qualifier="1")["init_type"] == "provisioned-concurrency"
    assert call(s, "odd-b")["env_id"] != b1
    assert call(s, "odd-c")["env_id"] != c1
    assert pids_named(marker) == {pid}


def budget_full_of_busy_environments(fresh_lambent, prefix, queue_timeout, hold_seconds):
    """A daemon whose 256 MB budget is held by two busy 128 MB environments (functions
    <prefix>-a and -b, each running one invoke for hold_seconds), and a third function,
    <prefix>-c, with none. Returns the daemon and the two holding invokes."""
    s = fresh_lambent(extra_args=["--memory-budget", "256", "--queue-timeout", str(queue_timeout)])
    for n in ("a", "b", "c"):
        create(s, f"{prefix}-{n}", memory=128)
    return s, start_holding(s, [f"{prefix}-a", f"{prefix}-b"], hold_seconds)


def test_memory_budget_full_of_busy_environments_queues_then_throttles(fresh_lambent):
    s, holds = budget_full_of_busy_environments(fresh_lambent, "busy", 2, 8)
    t0 = time.monotonic()
    err = throttled(s, "busy-c")
    waited = time.monotonic() - t0
    assert err["Reason"] == "ConcurrentInvocationLimitExceeded", err
    assert "waiting for an execution environment" in err["Error"]["Message"], err
    # It waited for memory (the queue timeout), not rejected at once, and
    # gave up while both holders still had the budget.
    assert waited >= 2.0, waited
    assert all(h.running() for h in holds)
    for h in holds:
        h.result()
    assert call(s, "busy-c")["function"] == "busy-c"


def test_memory_budget_waiter_is_served_when_a_busy_environment_goes_idle(fresh_lambent):
    # The budget is full of busy environments of other functions: nothing can be evicted
    # yet. Once one of them finishes its invoke it is idle, so evictable: the waiting
    # invoke gets its memory then, well within its queue timeout, not when an environment
    # happens to die.
    s, holds = budget_full_of_busy_environments(fresh_lambent, "idle", 30, 3)
    t0 = time.monotonic()
    waiting = Background(s, "idle-c", {})
    assert waiting.result()["function"] == "idle-c"
    waited = time.monotonic() - t0
    for h in holds:
        h.result()
    assert waited < 20, f"served after {waited:.1f} s, long after the holders went idle"
    assert "evicted: host memory budget" in s.log()


def test_waiting_invokes_are_served_in_order(fresh_lambent):
    # Room for exactly one environment: later invokes wait for it, in order.
    s = fresh_lambent(extra_args=["--memory-budget", "128", "--queue-timeout", "60"])
    create(s, "queued", memory=128)
    first = Background(s, "queued", {"seq": 1, "sleep": 2})
    wait_until(lambda: env_pids("queued"), 60, "the first environment")
    waiting = []
    for seq in (2, 3, 4):
        waiting.append(Background(s, "queued", {"seq": seq, "sleep": 0.2}))
        # Only orders the sends (each reaches the daemon before the next);
        # the assertions below do not depend on it being long.
        time.sleep(0.3)
    results = [first.result()] + [w.result() for w in waiting]
    assert [r["seq"] for r in results] == [1, 2, 3, 4]
    assert len({r["env_id"] for r in results}) == 1, "more than one environment fit the budget"
    starts = [r["started"] for r in results]
    assert starts == sorted(starts), results


# ---------------------------------------------------------------- fairness

def test_no_starvation_of_a_second_function_under_load(lambent):
    create(lambent, "load-a")
    create(lambent, "load-b")
    seen = []
    with Load(lambent, "load-a", {"sleep": 0.2}, clients=8, warm=16) as load:
        before = load.done
        for seq in range(1, 6):
            t0 = time.monotonic()
            got = call(lambent, "load-b", {"seq": seq, "sleep": 0.2})
            # A generous bound: this is about starvation, not speed.
            assert time.monotonic() - t0 < 10, "the second function waited behind the load"
            seen.append(got["seq"])
        during = load.done - before
    assert seen == [1, 2, 3, 4, 5]
    assert during > 0, "the first function's load was not running alongside"


# ---------------------------------------------------------------- found in review (session 12)

def create_versions(server, name, n, **kw):
    """Creates `name` and publishes versions 1..n of it (each after a description change)."""
    client = server.boto3()
    create(server, name, Publish=True, **kw)
    for v in range(2, n + 1):
        client.update_function_configuration(FunctionName=name, Description=f"version {v}")
        wait_until(lambda: client.get_function_configuration(
            FunctionName=name)["LastUpdateStatus"] == "Successful", 30, "the update")
        assert client.publish_version(FunctionName=name)["Version"] == str(v)


def test_huge_provisioned_requests_are_refused_not_overflowed(lambent):
    # 2^31 - 1 environments summed with others overflowed an int: the daemon aborted (debug)
    # or accepted provisioned concurrency far above the reservation (release).
    client = lambent.boto3()
    create_versions(lambent, "prov-huge", 2)
    biggest = 2**31 - 1

    def refused(qualifier, n):
        with pytest.raises(ClientError) as e:
            client.put_provisioned_concurrency_config(
                FunctionName="prov-huge", Qualifier=qualifier, ProvisionedConcurrentExecutions=n)
        assert error_code(e) == "InvalidParameterValueException", e.value.response
        return e.value.response["Error"]["Message"]

    # Without a reservation: out of the unreserved concurrency, which keeps 100.
    assert "below its minimum value of [100]" in refused("1", biggest)
    client.put_function_concurrency(FunctionName="prov-huge", ReservedConcurrentExecutions=5)
    try:
        client.put_provisioned_concurrency_config(FunctionName="prov-huge", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=1)
        assert "reservedConcurrentExecution" in refused("2", biggest)
        assert [c["RequestedProvisionedConcurrentExecutions"]
                for c in client.list_provisioned_concurrency_configs(
                    FunctionName="prov-huge")["ProvisionedConcurrencyConfigs"]] == [1]
    finally:
        client.delete_provisioned_concurrency_config(FunctionName="prov-huge", Qualifier="1")
        client.delete_function_concurrency(FunctionName="prov-huge")
    assert client.get_function(FunctionName="prov-huge")["Configuration"]["FunctionName"]


def test_provisioned_alias_must_name_one_published_version(lambent):
    # AWS: "Alias with weights can not be used with Provisioned Concurrency", and no
    # provisioned concurrency on $LATEST, even through an alias.
    client = lambent.boto3()
    create_versions(lambent, "prov-routes", 2)
    client.create_alias(FunctionName="prov-routes", Name="weighted", FunctionVersion="1",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    client.create_alias(FunctionName="prov-routes", Name="tip", FunctionVersion="$LATEST")
    client.create_alias(FunctionName="prov-routes", Name="live", FunctionVersion="1")

    def put(alias):
        return client.put_provisioned_concurrency_config(
            FunctionName="prov-routes", Qualifier=alias, ProvisionedConcurrentExecutions=1)

    def refused(call_it):
        with pytest.raises(ClientError) as e:
            call_it()
        assert error_code(e) == "InvalidParameterValueException", e.value.response
        return e.value.response["Error"]["Message"]

    assert "weights" in refused(lambda: put("weighted"))
    assert "unpublished" in refused(lambda: put("tip"))
    put("live")
    try:
        assert "weights" in refused(lambda: client.update_alias(
            FunctionName="prov-routes", Name="live",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}))
        assert "unpublished" in refused(lambda: client.update_alias(
            FunctionName="prov-routes", Name="live", FunctionVersion="$LATEST"))
        # Refused means unchanged; moving it to another published version is fine.
        live = client.get_alias(FunctionName="prov-routes", Name="live")
        assert live["FunctionVersion"] == "1" and "RoutingConfig" not in live, live
        assert client.update_alias(FunctionName="prov-routes", Name="live",
                                   FunctionVersion="2")["FunctionVersion"] == "2"
    finally:
        client.delete_provisioned_concurrency_config(FunctionName="prov-routes", Qualifier="live")
    configs = client.list_provisioned_concurrency_configs(FunctionName="prov-routes")
    assert configs["ProvisionedConcurrencyConfigs"] == []


def test_reserved_concurrency_counts_provisioned_and_running_invokes(fresh_lambent):
    s = fresh_lambent(extra_args=["--concurrency", "104"])
    client = s.boto3()
    create(s, "rc-prov", Publish=True)
    create(s, "rc-other")
    create(s, "rc-switch")
    # A reservation below the function's own provisioned concurrency is refused.
    client.put_provisioned_concurrency_config(FunctionName="rc-prov", Qualifier="1",
                                              ProvisionedConcurrentExecutions=2)
    try:
        with pytest.raises(ClientError) as e:
            client.put_function_concurrency(FunctionName="rc-prov",
                                            ReservedConcurrentExecutions=1)
        assert error_code(e) == "InvalidParameterValueException"
        assert "provisioned concurrency" in e.value.response["Error"]["Message"]
        # Another function's reservation counts rc-prov's unreserved provisioned
        # concurrency: 104 - 2 - 3 would leave 99.
        with pytest.raises(ClientError) as e:
            client.put_function_concurrency(FunctionName="rc-other",
                                            ReservedConcurrentExecutions=3)
        assert "below its minimum value of [100]" in e.value.response["Error"]["Message"]
        client.put_function_concurrency(FunctionName="rc-other", ReservedConcurrentExecutions=2)
        client.delete_function_concurrency(FunctionName="rc-other")
        client.put_function_concurrency(FunctionName="rc-prov", ReservedConcurrentExecutions=2)
    finally:
        client.delete_provisioned_concurrency_config(FunctionName="rc-prov", Qualifier="1")
        client.delete_function_concurrency(FunctionName="rc-prov")

    # A reservation set while invokes run counts them.
    holds = start_holding(s, ["rc-switch", "rc-switch"], 6)
    client.put_function_concurrency(FunctionName="rc-switch", ReservedConcurrentExecutions=2)
    err = throttled(s, "rc-switch")
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", err
    for h in holds:
        h.result()
    assert call(s, "rc-switch")["function"] == "rc-switch"


def test_provisioned_concurrency_is_set_aside_from_on_demand_invokes(fresh_lambent):
    # Account 101, f provisioned 1 (no reservation): on-demand invokes of every function
    # share the 100 left, and f's invoke that its provisioned environment covers takes none
    # of them. A 256 MB budget keeps g to one environment, so its other invokes queue for
    # memory — holding their concurrency — instead of starting 100 runtimes.
    s = fresh_lambent(extra_args=["--concurrency", "101", "--memory-budget", "256",
                                  "--queue-timeout", "60"])
    client = s.boto3(max_pool_connections=128)
    create(s, "sa-f", Publish=True)
    create(s, "sa-g")
    client.put_provisioned_concurrency_config(FunctionName="sa-f", Qualifier="1",
                                              ProvisionedConcurrentExecutions=1)
    wait_until(lambda: client.get_provisioned_concurrency_config(
        FunctionName="sa-f", Qualifier="1")["Status"] == "READY", 60, "READY")
    (hold,) = start_holding(s, ["sa-g"], 20)  # outlasts the probes below, even on a slow machine

    def invoke_g():
        try:
            r = client.invoke(FunctionName="sa-g", Payload=b"{}")
        except ClientError as e:
            return e.response
        return r["Payload"].read() and r["StatusCode"]

    with concurrent.futures.ThreadPoolExecutor(120) as pool:
        queued = [pool.submit(invoke_g) for _ in range(99)]
        # Probe until one of g's invokes is throttled: then 100 of them hold the 100
        # on-demand slots (one running, the rest waiting for memory). A probe that is not
        # throttled waits for memory like the others; the next one is sent after a second.
        throttle = None
        deadline = time.monotonic() + 60
        while throttle is None:
            assert time.monotonic() < deadline, "g's invokes were never throttled"
            probe = pool.submit(invoke_g)
            try:
                got = probe.result(timeout=1)
            except concurrent.futures.TimeoutError:
                queued.append(probe)
                continue
            assert isinstance(got, dict), f"a probe of g was served while memory was full: {got}"
            throttle = got
        assert throttle["Error"]["Code"] == "TooManyRequestsException", throttle
        assert throttle["Reason"] == "ConcurrentInvocationLimitExceeded", throttle
        # f's provisioned environment still serves: its invoke takes no on-demand slot.
        got = call(s, "sa-f", Qualifier="1")
        assert got["init_type"] == "provisioned-concurrency"
        assert hold.running()
        results = [q.result(timeout=120) for q in queued]
    hold.result()
    # No g invoke completes before the hold does (memory is full), so the first throttle came
    # with exactly 100 admitted; any other throttled one was sent (by its thread) after it.
    served = [r for r in results if r == 200]
    others = [r for r in results if r != 200]
    assert all(r["Reason"] == "ConcurrentInvocationLimitExceeded" for r in others), others[:3]
    assert 1 + len(served) == 100, (len(served), len(others))


def test_a_busy_function_does_not_keep_the_memory_budget_from_another(fresh_lambent):
    # Issue 5 item 4 under a memory budget: 'hot' keeps both of the budget's environments
    # busy with invokes always queued behind them, so none of its environments ever goes
    # idle (evictable). An environment that finishes one of hot's invokes while 'cold' waits
    # for memory stops instead, and cold gets its memory.
    s = fresh_lambent(extra_args=["--memory-budget", "256", "--queue-timeout", "20"])
    create(s, "hot")
    create(s, "cold")
    with Load(s, "hot", {"sleep": 0.3}, clients=4, warm=8) as load:
        before = load.done
        for seq in (1, 2, 3):
            assert call(s, "cold", {"seq": seq})["seq"] == seq
        during = load.done - before
    assert during > 0, "hot's load was not running alongside"
    assert "memory given to another function" in s.log()


def test_a_function_larger_than_the_memory_budget_fails_at_once(fresh_lambent):
    s = fresh_lambent(extra_args=["--memory-budget", "256", "--queue-timeout", "10"])
    create(s, "small")
    create(s, "huge", memory=1024)
    warm = call(s, "small")["env_id"]
    t0 = time.monotonic()
    with pytest.raises(ClientError) as e:
        s.invoke("huge", b"{}")
    assert time.monotonic() - t0 < 5, "it waited for memory that can never be there"
    assert error_code(e) == "InvalidParameterValueException", e.value.response
    assert "memory budget" in e.value.response["Error"]["Message"]
    # Nothing was evicted for it.
    assert call(s, "small")["env_id"] == warm
    assert "evicted" not in s.log()


def test_list_provisioned_concurrency_configs_pages(lambent):
    client = lambent.boto3()
    create_versions(lambent, "prov-pages", 3)
    try:
        for v in ("1", "2", "3"):
            client.put_provisioned_concurrency_config(
                FunctionName="prov-pages", Qualifier=v, ProvisionedConcurrentExecutions=1)
        first = client.list_provisioned_concurrency_configs(FunctionName="prov-pages", MaxItems=2)
        assert len(first["ProvisionedConcurrencyConfigs"]) == 2 and first.get("NextMarker")
        rest = client.list_provisioned_concurrency_configs(
            FunctionName="prov-pages", MaxItems=2, Marker=first["NextMarker"])
        assert len(rest["ProvisionedConcurrencyConfigs"]) == 1 and "NextMarker" not in rest
        pages = client.get_paginator("list_provisioned_concurrency_configs").paginate(
            FunctionName="prov-pages", PaginationConfig={"PageSize": 1})
        arns = [c["FunctionArn"] for p in pages for c in p["ProvisionedConcurrencyConfigs"]]
        assert sorted(a.rsplit(":", 1)[1] for a in arns) == ["1", "2", "3"]
        with pytest.raises(ClientError) as e:
            client.list_provisioned_concurrency_configs(FunctionName="prov-pages", Marker="zzz")
        assert error_code(e) == "InvalidParameterValueException"
    finally:
        for v in ("1", "2", "3"):
            client.delete_provisioned_concurrency_config(FunctionName="prov-pages", Qualifier=v)


def test_provisioned_concurrency_must_fit_in_the_memory_budget(fresh_lambent):
    # Provisioned environments are never evicted: more than the budget holds would never be
    # READY and would keep every other function out.
    s = fresh_lambent(extra_args=["--memory-budget", "384"])
    client = s.boto3()
    create(s, "fit-a", Publish=True)
    create(s, "fit-b", Publish=True, memory=256)
    with pytest.raises(ClientError) as e:
        client.put_provisioned_concurrency_config(FunctionName="fit-a", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=4)
    assert error_code(e) == "InvalidParameterValueException"
    assert "memory budget" in e.value.response["Error"]["Message"]
    client.put_provisioned_concurrency_config(FunctionName="fit-a", Qualifier="1",
                                              ProvisionedConcurrentExecutions=1)
    # 128 MB held by fit-a's; fit-b's 256 MB fits beside it, 2 x 256 does not.
    with pytest.raises(ClientError) as e:
        client.put_provisioned_concurrency_config(FunctionName="fit-b", Qualifier="1",
                                                  ProvisionedConcurrentExecutions=2)
    assert "memory budget" in e.value.response["Error"]["Message"]
    client.put_provisioned_concurrency_config(FunctionName="fit-b", Qualifier="1",
                                              ProvisionedConcurrentExecutions=1)
    # Moving a provisioned alias to a larger version is checked the same way.
    client.update_function_configuration(FunctionName="fit-a", MemorySize=512)
    wait_until(lambda: client.get_function_configuration(
        FunctionName="fit-a")["LastUpdateStatus"] == "Successful", 30, "the update")
    client.publish_version(FunctionName="fit-a")
    client.create_alias(FunctionName="fit-a", Name="live", FunctionVersion="1")
    client.delete_provisioned_concurrency_config(FunctionName="fit-a", Qualifier="1")
    client.put_provisioned_concurrency_config(FunctionName="fit-a", Qualifier="live",
                                              ProvisionedConcurrentExecutions=1)
    with pytest.raises(ClientError) as e:
        client.update_alias(FunctionName="fit-a", Name="live", FunctionVersion="2")
    assert "memory budget" in e.value.response["Error"]["Message"]
    assert client.get_alias(FunctionName="fit-a", Name="live")["FunctionVersion"] == "1"
    for n, q in (("fit-a", "live"), ("fit-b", "1")):
        wait_until(lambda n=n, q=q: client.get_provisioned_concurrency_config(
            FunctionName=n, Qualifier=q)["Status"] == "READY", 60, f"{n} READY")


def test_reserved_zero_throttles_invokes_already_waiting(fresh_lambent):
    # AWS: reserved concurrency 0 "stops any events from being processed". Invokes already
    # waiting for an environment (here: for memory) are throttled, not started later.
    s = fresh_lambent(extra_args=["--memory-budget", "128", "--queue-timeout", "60"])
    client = s.boto3()
    create(s, "zero-holder")
    create(s, "zero-f")
    (hold,) = start_holding(s, ["zero-holder"], 6)
    queued = [Background(s, "zero-f", {"seq": i}) for i in range(2)]
    wait_until(lambda: "zero-f waits for 128 MB of host memory (2 invokes waiting" in s.log(),
               30, "both invokes to wait for memory in the daemon")
    assert all(q.running() for q in queued)
    client.put_function_concurrency(FunctionName="zero-f", ReservedConcurrentExecutions=0)
    for q in queued:
        with pytest.raises(ClientError) as e:
            q.result(timeout=10)
        err = e.value.response
        assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", err
    assert hold.running(), "the waiting invokes were throttled only when memory came back"
    hold.result()
    assert not env_pids("zero-f"), "an environment of the stopped function was started"
