"""Privileged sandbox suite: nothing leaks when the daemon dies.

kill -9 of `lambent serve` must take the spawner helper and every
environment with it (PR_SET_PDEATHSIG), and a restarted daemon sweeps what a
crash could have left (cgroups, environment folders); no mount ever reaches
the host's mount table.
"""
import glob
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces sandbox needs root"),
    pytest.mark.privileged,
]

HELLO_PY = "def handler(event, context):\n    return {'ok': True}\n"
HELLO_NODE = "export const handler = async () => ({ok: true});\n"
HELLO_BASH = """#!/bin/bash
set -euo pipefail
H=$(mktemp)
while true; do
  curl -sS -D "$H" -o /dev/null "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next"
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  curl -sS "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/$ID/response" \\
    -d '{"ok": true}' >/dev/null
done
"""


def proc_table():
    """pid -> (ppid, start time) for every process on the host."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        out[int(d)] = (int(fields[1]), fields[19])
    return out


def descendants(root):
    table = proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out[c] = table[c][1]
            todo.append(c)
    return out


def alive(procs):
    table = proc_table()
    return {p for p, start in procs.items() if p in table and table[p][1] == start}


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def cgroup_parents(pid):
    """The daemon's cgroup parent folders, from an environment process's cgroup file."""
    dirs = []
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if not path.startswith("/lambent"):
            continue
        parent = os.path.dirname(path)
        if controllers == "":
            dirs.append("/sys/fs/cgroup" + parent)
        else:
            for c in controllers.split(","):
                d = os.path.realpath(f"/sys/fs/cgroup/{c}{parent}")
                if os.path.isdir(d) and d not in dirs:
                    dirs.append(d)
    return dirs


def host_mounts_mentioning(text):
    return [line for line in open("/proc/self/mountinfo") if text in line]


def wait_until(cond, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_kill_9_leaves_nothing_and_restart_sweeps(fresh_lambent):
    d = fresh_lambent(isolation="namespaces",
                      extra_args=["--runtime-dir", os.path.join(ROOT, "runtimes")])
    d.create("py", {"app.py": HELLO_PY}, runtime="python3.12", handler="app.handler")
    d.create("node", {"index.mjs": HELLO_NODE}, runtime="nodejs20.x", handler="index.handler")
    d.create("bash", {"bootstrap": (HELLO_BASH, 0o755)})
    for name in ("py", "node", "bash"):
        r, body = d.invoke(name, {})
        assert "FunctionError" not in r, body

    procs = descendants(d.proc.pid)
    table = proc_table()
    # (the pool may start a sandbox between the two snapshots)
    helpers = [p for p in procs
               if table.get(p, (None,))[0] == d.proc.pid and comm(p) == "lambent-spawner"]
    assert len(helpers) == 1, {p: comm(p) for p in procs}
    env_procs = [p for p in procs if p != helpers[0]]
    # Each environment: init (pid 1 of its namespace) and the runtime.
    assert len(env_procs) >= 6, {p: comm(p) for p in procs}
    runtime = next(p for p in env_procs if comm(p).startswith("python"))
    parents = cgroup_parents(runtime)
    assert parents, open(f"/proc/{runtime}/cgroup").read()
    assert all(len(os.listdir(p)) > 0 for p in parents)
    assert host_mounts_mentioning(d.data_dir) == []

    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    assert wait_until(lambda: not alive(procs)), {p: comm(p) for p in alive(procs)}
    # The helper cleaned up on its way out (PDEATHSIG → orderly stop).
    assert wait_until(lambda: not any(glob.glob(p + "/*/") for p in parents)), \
        [glob.glob(p + "/*/") for p in parents]
    assert host_mounts_mentioning(d.data_dir) == []

    # Simulate what a harder crash (the helper killed too) leaves behind: a
    # cgroup with a live task in every hierarchy, and an environment folder.
    stale = subprocess.Popen(["/bin/sleep", "300"])
    stale_dirs = []
    try:
        for p in parents:
            os.makedirs(p + "/stale-env", exist_ok=True)
            stale_dirs.append(p + "/stale-env")
            with open(p + "/stale-env/cgroup.procs", "w") as f:
                f.write(str(stale.pid))
        os.makedirs(os.path.join(d.data_dir, "envs", "stale-env", "tmp"), exist_ok=True)

        d.start()
        r, body = d.invoke("py", {})
        assert "FunctionError" not in r, body
        assert not any(os.path.exists(s) for s in stale_dirs), stale_dirs
        assert stale.wait(timeout=10) == -signal.SIGKILL
        assert not os.path.exists(os.path.join(d.data_dir, "envs", "stale-env"))
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
        for s in stale_dirs:
            if os.path.isdir(s):
                os.rmdir(s)

    procs = descendants(d.proc.pid)
    assert d.stop() == 0
    assert wait_until(lambda: not alive(procs))
    # A clean stop leaves no environment cgroup (nor, with the per-daemon
    # parent, the parent itself) and no mount.
    leftovers = [g for p in parents for g in glob.glob(p + "/*/")]
    assert leftovers == []
    assert host_mounts_mentioning(d.data_dir) == []
    assert not os.listdir(os.path.join(d.data_dir, "envs")) if os.path.isdir(
        os.path.join(d.data_dir, "envs")) else True


def freezer_state(pid):
    """'FROZEN'/'THAWED' (v1) or 'frozen 1'/'frozen 0' (v2) of a process's cgroup."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return open(f"/sys/fs/cgroup/freezer{path}/freezer.state").read().strip()
        if controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/cgroup.events"):
            events = open(f"/sys/fs/cgroup{path}/cgroup.events").read()
            return "FROZEN" if "frozen 1" in events else "THAWED"
    return None


def test_freeze_idle_environments(fresh_lambent):
    # No pre-made sandboxes: their waiting Python runtimes would be found below too.
    d = fresh_lambent(isolation="namespaces", extra_args=[
        "--freeze-idle", "--sandbox-pool", "0", "--runtime-dir", os.path.join(ROOT, "runtimes")])
    d.create("py", {"app.py": "import os\ndef handler(e, c):\n    return {'pid': os.getpid()}\n"},
             runtime="python3.12", handler="app.handler")
    r, body = d.invoke("py", {})
    assert "FunctionError" not in r, body
    runtime = [p for p in descendants(d.proc.pid)
               if b"bootstrap.py" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(runtime) == 1
    # Idle: frozen (the state settles once the runtime has parked its /next).
    assert wait_until(lambda: freezer_state(runtime[0]) == "FROZEN"), freezer_state(runtime[0])
    first = __import__("json").loads(body)["pid"]
    for _ in range(3):
        r, body = d.invoke("py", {})
        assert "FunctionError" not in r, body
        assert __import__("json").loads(body)["pid"] == first  # the same, thawed environment
        assert wait_until(lambda: freezer_state(runtime[0]) == "FROZEN")
    assert d.stop() == 0
