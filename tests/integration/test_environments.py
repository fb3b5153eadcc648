"""Environment behaviour the core issue promises beyond single invokes:
function output can never flood the daemon, and DeleteFunction stops the
function's environments."""
import os
import time

FLOOD = r'''
import sys, time
def handler(event, context):
    chunk = ("lambent-flood " * 4096 + "\n") * 16          # ~900 KB of lines
    for _ in range(event.get("chunks", 0)):
        sys.stdout.write(chunk)
        sys.stdout.flush()
        time.sleep(0.05)
    print(event.get("say", "done"))
    return {"ok": True}
'''


def events_of(lambent, group, pattern=""):
    logs = lambent.boto3("logs")
    out, token = [], None
    while True:
        kw = {"logGroupName": group, "filterPattern": pattern}
        if token:
            kw["nextToken"] = token
        r = logs.filter_log_events(**kw)
        out += r["events"]
        token = r.get("nextToken")
        if not token:
            return out


# The function names its own process (PR_SET_NAME) so that the host can find it:
# /proc/<pid>/environ shows only the environment a process was started with, and a
# pooled runtime is started before it knows its function.
DOOMED = r'''
import ctypes
ctypes.CDLL(None).prctl(15, b"lbt-doomed", 0, 0, 0)
def handler(event, context):
    return "ok"
'''


def host_processes_named(comm):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_until(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_output_flood_is_capped_and_the_daemon_keeps_serving(lambent):
    lambent.create("flood", {"app.py": FLOOD}, runtime="python3.12", handler="app.handler",
                   Timeout=30)
    lambent.create("quiet", {"app.py": FLOOD}, runtime="python3.12", handler="app.handler")
    # ~36 MB of output within ~2 s: far over the 1 MB/s an environment may log.
    r, body = lambent.invoke("flood", {"chunks": 40})
    assert "FunctionError" not in r, body
    # Another function is served normally meanwhile and afterwards.
    r, body = lambent.invoke("quiet", {"say": "still here"})
    assert "FunctionError" not in r, body
    # The next output of the flooding environment reports what was dropped.
    r, body = lambent.invoke("flood", {"say": "after the flood"})
    assert "FunctionError" not in r, body
    group = "/aws/lambda/flood"
    assert wait_until(lambda: events_of(lambent, group, '"function output dropped"'))
    reports = [e["message"] for e in events_of(lambent, group, '"function output dropped"')]
    dropped_bytes = sum(int(m.split()[1]) for m in reports)
    assert dropped_bytes > 16 * 1024 * 1024, reports
    stored = sum(len(e["message"]) for e in events_of(lambent, group, "lambent-flood"))
    assert stored < 20 * 1024 * 1024, stored
    assert events_of(lambent, group, '"after the flood"')


def test_delete_function_stops_its_environments(lambent):
    lambent.create("doomed", {"app.py": DOOMED}, runtime="python3.12", handler="app.handler")
    r, body = lambent.invoke("doomed", {})
    assert "FunctionError" not in r, body
    assert host_processes_named("lbt-doomed"), "the warm environment should be running"
    lambent.boto3().delete_function(FunctionName="doomed")
    assert wait_until(lambda: not host_processes_named("lbt-doomed")), \
        host_processes_named("lbt-doomed")
