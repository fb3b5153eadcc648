"""Namespaces isolation for a daemon that is not root: a user namespace maps the
sandbox user (993 inside) to the daemon's own user, and init holds capabilities
only inside it. Started from root with `setpriv` as the unprivileged `nobody`.
"""
import json
import os

import pytest

from conftest import Lambent

NOBODY = 65534

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root"),
    pytest.mark.privileged,
]

PROBE = r'''
import json, os, socket
def handler(event, context):
    def attempt(fn):
        try:
            fn()
            return "allowed"
        except OSError as e:
            return e.__class__.__name__ + ":" + str(e.errno)
    def write_task():
        open("/var/task/x", "w").write("x")
    def write_tmp():
        open("/tmp/x", "w").write("x")
        os.unlink("/tmp/x")
    return {
        "uid": os.getuid(), "gid": os.getgid(),
        "hostname": socket.gethostname(),
        "root_entries": sorted(os.listdir("/")),
        "shadow": os.path.exists("/etc/shadow"),
        "home": os.path.exists("/home") or os.path.exists("/root"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "write_task": attempt(write_task),
        "write_tmp": attempt(write_tmp),
        "cwd": os.getcwd(),
        "task": sorted(os.listdir("/var/task")),
        "capeff": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0],
        "seccomp": [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0],
        "unshare": attempt(lambda: os.unshare(os.CLONE_NEWUSER)) if hasattr(os, "unshare") else "n/a",
        "cpus": sorted(os.sched_getaffinity(0)),
    }
'''


@pytest.fixture(scope="module")
def rootless():
    server = Lambent(isolation="namespaces", run_as=NOBODY)
    yield server
    code = server.stop()
    log = server.log()
    server.close()
    assert code == 0, "lambent serve did not shut down cleanly:\n" + log[-5000:]


def daemon_uid(server):
    with open(f"/proc/{server.proc.pid}/status") as f:
        return int([l for l in f if l.startswith("Uid:")][0].split()[1])


def test_unprivileged_daemon_runs_functions_in_namespaces(rootless):
    assert daemon_uid(rootless) == NOBODY
    rootless.create("probe", {"app.py": PROBE}, runtime="python3.12", handler="app.handler")
    r, body = rootless.invoke("probe", {})
    assert "FunctionError" not in r, body
    got = json.loads(body)
    assert (got["uid"], got["gid"]) == (993, 993)
    assert got["hostname"] == "localhost"
    assert {"dev", "etc", "opt", "proc", "tmp", "usr", "var"} <= set(got["root_entries"])
    assert set(got["root_entries"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                                        "opt", "proc", "sbin", "tmp", "usr", "var"}
    assert not got["shadow"] and not got["home"]
    # Its own PID namespace: only the runtime (init is hidden), not the host's processes.
    assert max(got["pids"]) < 10, got["pids"]
    assert got["write_task"] == "OSError:30", got["write_task"]  # EROFS
    assert got["write_tmp"] == "allowed"
    assert got["cwd"] == "/var/task" and got["task"] == ["app.py"]
    assert got["capeff"] == "0000000000000000"
    assert got["seccomp"] == "2"
    assert got["unshare"] != "allowed"
    # Placed on its event loop's CPU (docs/design.md, "CPU placement"), here too.
    assert len(got["cpus"]) == 1 and got["cpus"][0] in os.sched_getaffinity(0), got["cpus"]


def test_unprivileged_daemon_refuses_egress_clearly(rootless):
    rootless.create("egress", {"app.py": "def handler(e, c):\n    return 1\n"},
                    runtime="python3.12", handler="app.handler",
                    Tags={"lambent:egress": "true"})
    r, body = rootless.invoke("egress", {})
    assert r.get("FunctionError") == "Unhandled", body
    err = json.loads(body)
    assert err["errorType"] == "Sandbox.Failure"
    assert "egress" in err["errorMessage"] and "root" in err["errorMessage"]
