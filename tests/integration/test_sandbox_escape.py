"""Privileged sandbox suite: functions deployed through the daemon try to escape.

Each test deploys (or reuses) a function whose handler attempts one escape from
inside the namespaces sandbox and reports what happened as JSON; the test
asserts that the attempt failed the expected way AND, where it can, that the
host-side target really exists (so a broken probe cannot pass silently).

Runs only as root (the namespaces sandbox needs it); scripts/test (= .ci/run)
runs it with the rest of tests/integration. `pytest -m privileged` selects it.
"""
import json
import os
import platform
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ROOT, Lambent, lambent_bin

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces sandbox needs root"),
    pytest.mark.privileged,
]

# One probe function, many checks: the handler runs the check named in the
# event and reports {"ok": bool, ...} — "ok" meaning the attempt SUCCEEDED.
PROBE = r'''
import ctypes, ctypes.util, errno, json, os, signal, socket, subprocess, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

def err_name(e):
    return errno.errorcode.get(e, str(e))

def try_read(path):
    try:
        with open(path, "rb") as f:
            return {"ok": True, "data": f.read(200).decode(errors="replace")}
    except OSError as e:
        return {"ok": False, "errno": err_name(e.errno)}

def try_list(path):
    try:
        return {"ok": True, "entries": sorted(os.listdir(path))[:50]}
    except OSError as e:
        return {"ok": False, "errno": err_name(e.errno)}

def try_write(path):
    try:
        with open(path, "wb") as f:
            f.write(b"escaped")
        return {"ok": True}
    except OSError as e:
        return {"ok": False, "errno": err_name(e.errno)}

def try_connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return {"ok": True}
    except OSError as e:
        return {"ok": False, "errno": err_name(e.errno) if e.errno else type(e).__name__}
    finally:
        s.close()

def sys_result(rc):
    e = ctypes.get_errno()
    return {"ok": rc == 0 or rc > 0, "rc": rc, "errno": err_name(e) if rc < 0 else None}

def handler(event, context):
    c = event["check"]
    if c == "read":
        return {p: try_read(p) for p in event["paths"]}
    if c == "list":
        return {p: try_list(p) for p in event["paths"]}
    if c == "write":
        return {p: try_write(p) for p in event["paths"]}
    if c == "connect":
        return {f"{h}:{p}": try_connect(h, p) for h, p in event["targets"]}
    if c == "http_get":
        import urllib.request, urllib.error
        try:
            with urllib.request.urlopen(event["url"], timeout=3) as r:
                return {"status": r.status, "body": r.read().decode()}
        except urllib.error.HTTPError as e:
            return {"status": e.code, "body": e.read().decode()}
    if c == "interfaces":
        return {"names": [n for _, n in socket.if_nameindex()]}
    if c == "processes":
        procs = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    procs[d] = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode()
                except OSError:
                    procs[d] = None
        return {"procs": procs, "self": os.getpid(), "uid": os.getuid()}
    if c == "signal":
        out = {}
        for pid in event["pids"]:
            try:
                os.kill(pid, signal.SIGKILL)
                out[str(pid)] = {"ok": True}
            except OSError as e:
                out[str(pid)] = {"ok": False, "errno": err_name(e.errno)}
        # Every process this user may signal, except ourselves (kill(2) on -1).
        try:
            os.kill(-1, signal.SIGKILL)
            out["-1"] = {"ok": True}
        except OSError as e:
            out["-1"] = {"ok": False, "errno": err_name(e.errno)}
        return out
    if c == "mount":
        os.makedirs("/tmp/m", exist_ok=True)
        out = {"tmpfs": sys_result(libc.mount(b"none", b"/tmp/m", b"tmpfs", 0, None)),
               "bind_root": sys_result(libc.mount(b"/", b"/tmp/m", None, 4096, None)),  # MS_BIND
               "remount_task_rw": sys_result(libc.mount(None, b"/var/task", None, 32, None))}
        for name, flag in (("unshare_user", 0x10000000), ("unshare_mount", 0x00020000)):
            out[name] = sys_result(libc.unshare(flag))
        return out
    if c == "ptrace":
        child = subprocess.Popen(["/bin/sleep", "30"])
        try:
            PTRACE_ATTACH, PTRACE_TRACEME = 16, 0
            return {"attach_child": sys_result(libc.ptrace(PTRACE_ATTACH, child.pid, None, None)),
                    "attach_init": sys_result(libc.ptrace(PTRACE_ATTACH, 1, None, None)),
                    "traceme": sys_result(libc.ptrace(PTRACE_TRACEME, 0, None, None)),
                    "read_init_mem": try_read("/proc/1/mem"),
                    "read_init_environ": try_read("/proc/1/environ")}
        finally:
            child.kill()
            child.wait()
    if c == "module":
        SYS_init_module, SYS_finit_module, SYS_delete_module = 175, 313, 176
        image = ctypes.create_string_buffer(b"\x7fELF" + b"\0" * 60)
        fd = os.open("/dev/null", os.O_RDONLY)
        try:
            return {"init_module": sys_result(libc.syscall(SYS_init_module, image, 64, b"")),
                    "finit_module": sys_result(libc.syscall(SYS_finit_module, fd, b"", 0)),
                    "delete_module": sys_result(libc.syscall(SYS_delete_module, b"loop", 0)),
                    "modprobe": subprocess.run(["/sbin/modprobe", "dummy"], capture_output=True)
                    .returncode if os.path.exists("/sbin/modprobe") else None}
        finally:
            os.close(fd)
    if c == "oom":
        hog = []
        for _ in range(event["mb"]):
            hog.append(bytearray(1 << 20))  # zero-filled: every page touched
        return {"ok": True, "allocated_mb": len(hog)}
    if c == "fill_tmp":
        written, err = 0, None
        chunk = b"x" * (1 << 20)
        try:
            with open("/tmp/fill", "wb") as f:
                while written < event["limit_mb"] << 20:
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
        except OSError as e:
            err = err_name(e.errno)
        return {"written": written, "errno": err}
    if c == "rm":
        for p in event["paths"]:
            try:
                os.unlink(p)
            except OSError:
                pass
        return {"ok": True}
    if c == "forkbomb":
        # A fork bomb that keeps trying without burning the machine's CPU:
        # every process forks until fork fails, then sleeps and retries.
        pid = os.fork()
        if pid == 0:
            os.setsid()
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.5)
        deadline = time.time() + 20
        eagain = None
        while time.time() < deadline:
            try:
                p = os.fork()
                if p == 0:
                    os._exit(0)
                os.waitpid(p, 0)
                time.sleep(0.01)
            except OSError as e:
                eagain = err_name(e.errno)
                break
        count = sum(1 for d in os.listdir("/proc") if d.isdigit())
        return {"fork_error": eagain, "processes": count}
    if c == "background_then_hang":
        # A session leader of its own, double-forked: it escapes the
        # bootstrap's process group and is reparented away from us.
        subprocess.Popen(["/bin/sh", "-c", "(/usr/bin/python3 -c 'import time; time.sleep(600)' "
                          + event["marker"] + " &) ; exit 0"], start_new_session=True)
        time.sleep(600)
    if c == "egress":
        host = os.environ.get("LAMBENT_HOST_ADDRESS")
        out = {"host": host, "names": [n for _, n in socket.if_nameindex()]}
        if host:
            s = socket.create_connection((host, event["port"]), timeout=5)
            s.sendall(event["marker"].encode())
            s.close()
            out["sent"] = True
        return out
    if c == "hello":
        return {"pid": os.getpid(), "ok": True}
    raise ValueError("unknown check " + c)
'''


def deploy_probe(daemon, name, **kw):
    kw.setdefault("Timeout", 30)
    daemon.create(name, {"probe.py": PROBE}, runtime="python3.12", handler="probe.handler", **kw)


def run(daemon, name, event):
    r, body = daemon.invoke(name, event)
    assert "FunctionError" not in r, body
    return json.loads(body)


def daemon_healthy(daemon):
    """The daemon still serves its API and starts new environments."""
    out = run(daemon, "probe", {"check": "hello"})
    assert out["ok"] is True
    assert daemon.proc.poll() is None


@pytest.fixture(scope="module")
def daemon():
    server = Lambent(isolation="namespaces", extra_args=[
        "--egress", "none", "--runtime-dir", os.path.join(ROOT, "runtimes")])
    deploy_probe(server, "probe")
    # A second function whose code must stay invisible to the probe.
    server.create("victim", {"secret.txt": "victim-secret-" + uuid.uuid4().hex,
                             "probe.py": PROBE},
                  runtime="python3.12", handler="probe.handler")
    yield server
    code = server.stop()
    log = server.log()
    server.close()
    assert code == 0, "lambent serve did not shut down cleanly:\n" + log[-5000:]


def find_host_file(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    return None


# ---- files ----

def test_cannot_read_etc_shadow(daemon):
    assert os.path.exists("/etc/shadow")
    out = run(daemon, "probe", {"check": "read", "paths": ["/etc/shadow", "/etc/gshadow",
                                                          "/proc/1/root/etc/shadow"]})
    for path, res in out.items():
        assert res["ok"] is False, f"{path} readable: {res}"


def test_cannot_see_daemon_data_folder(daemon):
    data = daemon.data_dir
    assert os.path.exists(os.path.join(data, "lambent.db"))
    assert os.path.exists(os.path.join(data, "credentials"))
    out = run(daemon, "probe", {"check": "read", "paths": [
        os.path.join(data, "credentials"), os.path.join(data, "lambent.db"),
        "/proc/1/root" + os.path.join(data, "credentials"),
        "/proc/1/cwd/credentials", "/proc/1/environ"]})
    for path, res in out.items():
        assert res["ok"] is False, f"{path} readable: {res}"
    listed = run(daemon, "probe", {"check": "list", "paths": [data, daemon.tmp, "/root", "/home",
                                                             "/work", "/proc/1/root"]})
    for path, res in listed.items():
        assert res["ok"] is False, f"{path} listable: {res}"


def test_cannot_read_another_functions_code(daemon):
    # The victim's code exists on the host, unpacked under the data folder.
    run(daemon, "victim", {"check": "hello"})
    secret = find_host_file(daemon.data_dir, "secret.txt")
    assert secret is not None
    out = run(daemon, "probe", {"check": "read", "paths": [
        secret, "/var/task/secret.txt", "/var/task/../" + os.path.basename(secret)]})
    for path, res in out.items():
        assert res["ok"] is False, f"{path} readable: {res}"
    # Its own code is there: the probe reads the right kind of path.
    own = run(daemon, "probe", {"check": "read", "paths": ["/var/task/probe.py"]})
    assert own["/var/task/probe.py"]["ok"] is True


def test_root_contains_only_the_assembled_tree(daemon):
    out = run(daemon, "probe", {"check": "list", "paths": ["/", "/etc", "/dev"]})
    assert set(out["/"]["entries"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                                        "opt", "proc", "sbin", "tmp", "usr", "var"}
    assert "shadow" not in out["/etc"]["entries"]
    assert set(out["/dev"]["entries"]) <= {"null", "zero", "full", "random", "urandom", "tty",
                                           "fd", "stdin", "stdout", "stderr", "shm"}


@pytest.mark.skipif(not os.path.isdir("/usr/lib64") or platform.machine() != "x86_64",
                    reason="the host has no /usr/lib64 to show its libraries at")
def test_system_libraries_are_in_lib64_as_on_amazon_linux(daemon):
    # Lambda's LD_LIBRARY_PATH begins /lib64:/usr/lib64; with the libraries there the dynamic
    # loader finds libc without probing every other folder of the path first. The loader
    # itself stays where every binary's interpreter path names it.
    paths = ["/lib64/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
    out = run(daemon, "probe", {"check": "read", "paths": paths})
    for path, res in out.items():
        assert res["ok"] is True and res["data"].startswith("\x7fELF"), (path, res)


def test_cannot_write_outside_tmp(daemon):
    paths = ["/var/task/x", "/var/task/probe.py", "/var/runtime/x", "/opt/x", "/x", "/etc/x",
             "/usr/x", "/dev/x"]
    out = run(daemon, "probe", {"check": "write", "paths": paths + ["/tmp/ok"]})
    for p in paths:
        assert out[p]["ok"] is False, f"{p} writable"
        assert out[p]["errno"] in ("EROFS", "EACCES", "EPERM"), out[p]
    assert out["/tmp/ok"]["ok"] is True


# ---- processes ----

def test_cannot_see_host_processes(daemon):
    out = run(daemon, "probe", {"check": "processes"})
    cmdlines = [c or "" for c in out["procs"].values()]
    assert len(out["procs"]) < 10, out["procs"]
    assert not any("lambent" in c and "serve" in c for c in cmdlines), cmdlines
    assert out["uid"] == 993


def test_cannot_signal_host_or_other_environments(daemon):
    # A host process of the sandbox user (the strongest case: same uid as the
    # functions) and a warm environment of another function.
    victim_before = run(daemon, "victim", {"check": "hello"})["pid"]
    host = subprocess.Popen(["/bin/sleep", "120"], preexec_fn=lambda: (os.setgid(993),
                                                                        os.setuid(993)))
    try:
        out = run(daemon, "probe", {"check": "signal", "pids": [host.pid, daemon.proc.pid]})
        assert out[str(host.pid)]["ok"] is False or host.pid < 10, out
        assert host.poll() is None, "a host process of the sandbox user was killed"
        assert daemon.proc.poll() is None
        # Still the same warm victim environment: nothing of it was killed.
        assert run(daemon, "victim", {"check": "hello"})["pid"] == victim_before
    finally:
        host.kill()
        host.wait()
    daemon_healthy(daemon)


def test_cannot_mount_or_unshare(daemon):
    out = run(daemon, "probe", {"check": "mount"})
    for name, res in out.items():
        assert res["ok"] is False, f"{name} succeeded"
        assert res["errno"] in ("EPERM", "EACCES"), (name, res)


def test_cannot_ptrace(daemon):
    out = run(daemon, "probe", {"check": "ptrace"})
    for name, res in out.items():
        assert res["ok"] is False, f"{name} succeeded: {res}"


def test_cannot_load_kernel_modules(daemon):
    # Kernels built without module support have no /proc/modules.
    modules = "/proc/modules"
    modules_before = open(modules).read() if os.path.exists(modules) else None
    out = run(daemon, "probe", {"check": "module"})
    for name in ("init_module", "finit_module", "delete_module"):
        assert out[name]["ok"] is False and out[name]["errno"] == "EPERM", out
    assert out["modprobe"] in (None,) or out["modprobe"] != 0
    if modules_before is not None:
        assert open(modules).read() == modules_before


# ---- network (egress none) ----

def host_listening_ports():
    p = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True)
    ports = set()
    for line in p.stdout.splitlines():
        m = re.search(r":(\d+)\s", line.split(None, 4)[3] + " ")
        if m:
            ports.add(int(m.group(1)))
    return ports


def host_addresses():
    p = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    return sorted({m.group(1) for m in re.finditer(r"inet (\S+)/", p.stdout)})


def test_only_loopback_interface(daemon):
    assert run(daemon, "probe", {"check": "interfaces"})["names"] == ["lo"]


def test_cannot_reach_daemon_or_host_ports(daemon):
    ports = sorted(host_listening_ports() - {9001})
    assert daemon.port in ports
    targets = [["127.0.0.1", p] for p in ports[:40]]
    targets += [[a, daemon.port] for a in host_addresses() if a != "127.0.0.1"]
    out = run(daemon, "probe", {"check": "connect", "targets": targets})
    for t, res in out.items():
        assert res["ok"] is False, f"{t} reachable from the sandbox"


def test_cannot_reach_another_environments_runtime_api(daemon):
    # Each environment's Runtime API is 127.0.0.1:9001 in its own network
    # namespace; 9001 from the probe is its own API (the only listener there).
    run(daemon, "victim", {"check": "hello"})
    r, body = daemon.invoke("probe", {"check": "connect", "targets": [["127.0.0.1", 9001],
                                                                     ["127.0.0.1", 9002]]})
    out = json.loads(body)
    assert out["127.0.0.1:9001"]["ok"] is True
    assert out["127.0.0.1:9002"]["ok"] is False
    # And it is the probe's own API: busy with this very invocation (the
    # victim's idle API would say "Ready to Ready").
    out = run(daemon, "probe", {"check": "http_get", "url":
                                "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next"})
    assert out["status"] == 403 and "Running to Ready" in out["body"], out


# ---- resources ----

def test_out_of_memory_is_reported_and_environment_replaced(daemon):
    deploy_probe(daemon, "oom", MemorySize=128)
    first = run(daemon, "oom", {"check": "hello"})["pid"]
    r, body = daemon.invoke("oom", {"check": "oom", "mb": 1024})
    assert r.get("FunctionError") == "Unhandled", body
    err = json.loads(body)
    assert err["errorType"] == "Runtime.OutOfMemory", err
    # The next invoke gets a fresh environment and works; the daemon is fine.
    again = run(daemon, "oom", {"check": "oom", "mb": 16})
    assert again["allocated_mb"] == 16
    assert run(daemon, "oom", {"check": "hello"})["ok"] is True
    del first
    daemon_healthy(daemon)


def sandbox_user_processes():
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat(f"/proc/{d}").st_uid == 993:
                out.append(int(d))
        except OSError:
            pass
    return out


def test_fork_bomb_is_contained(daemon):
    deploy_probe(daemon, "bomb", MemorySize=1024, Timeout=60)
    before = len(sandbox_user_processes())
    out = run(daemon, "bomb", {"check": "forkbomb"})
    assert out["fork_error"] == "EAGAIN", out
    # pids.max (1024 per environment) stops it, not the host's limits.
    assert out["processes"] <= 1030, out
    assert len(sandbox_user_processes()) <= before + 1030
    # The host and the daemon still work while the bomb is live.
    subprocess.run(["/bin/true"], check=True)
    daemon_healthy(daemon)
    # Killing the function's processes from inside leaves the bomb's
    # environment; deleting the function ends it, and all its processes go.
    daemon.boto3().delete_function(FunctionName="bomb")
    deadline = time.time() + 20
    while time.time() < deadline and len(sandbox_user_processes()) > before + 5:
        time.sleep(0.2)
    assert len(sandbox_user_processes()) <= before + 5
    daemon_healthy(daemon)


def test_filling_tmp_stops_at_its_size_without_host_disk(daemon):
    deploy_probe(daemon, "filler", MemorySize=1024, EphemeralStorage={"Size": 512})
    free_before = os.statvfs(daemon.data_dir)
    out = run(daemon, "filler", {"check": "fill_tmp", "limit_mb": 2048})
    free_after = os.statvfs(daemon.data_dir)
    try:
        assert out["errno"] == "ENOSPC", out
        assert 500 << 20 <= out["written"] <= 512 << 20, out
        used = (free_before.f_bavail - free_after.f_bavail) * free_after.f_frsize
        # The 512 MB live in the environment's tmpfs (charged to its memory
        # cgroup), not on the host's disk (other builds may write a little).
        assert used < 256 << 20, f"host disk shrank by {used >> 20} MB"
    finally:
        run(daemon, "filler", {"check": "rm", "paths": ["/tmp/fill"]})
    daemon_healthy(daemon)


def processes_with(marker):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if marker.encode() in open(f"/proc/{d}/cmdline", "rb").read():
                found.append(int(d))
        except OSError:
            pass
    return found


def test_nothing_keeps_running_after_a_timeout(daemon):
    deploy_probe(daemon, "hang", Timeout=3)
    marker = "lambent-escape-marker-" + uuid.uuid4().hex
    result = {}

    def call():
        result["r"] = daemon.invoke("hang", {"check": "background_then_hang", "marker": marker})
    t = threading.Thread(target=call)
    t.start()
    # The background process exists while the invoke runs (so the check below can fail).
    deadline = time.time() + 20
    while time.time() < deadline and not processes_with(marker):
        time.sleep(0.05)
    assert processes_with(marker), "the background process never started"
    t.join(60)
    r, body = result["r"]
    assert r.get("FunctionError") == "Unhandled"
    assert json.loads(body)["errorType"] == "Sandbox.Timedout", body
    deadline = time.time() + 10
    while time.time() < deadline and processes_with(marker):
        time.sleep(0.05)
    assert processes_with(marker) == [], "a process outlived its environment's timeout"
    assert run(daemon, "hang", {"check": "hello"})["ok"] is True


# ---- runtimes and examples run unchanged ----

def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def test_example_hello_python(daemon):
    daemon.create("ex-python", {"app.py": read("examples/hello-python/app.py")},
                  runtime="python3.12", handler="app.handler")
    out = run(daemon, "ex-python", {"name": "sandbox"})
    assert out["message"] == "Hello, sandbox!"


def test_example_hello_node(daemon):
    daemon.create("ex-node", {"index.mjs": read("examples/hello-node/index.mjs")},
                  runtime="nodejs20.x", handler="index.handler")
    out = run(daemon, "ex-node", {"name": "sandbox"})
    assert out == {"message": "Hello, sandbox!"}


def test_example_hello_bash(daemon):
    daemon.create("ex-bash", {"bootstrap": (read("examples/hello-bash/bootstrap"), 0o755),
                              "function.sh": read("examples/hello-bash/function.sh")},
                  runtime="provided.al2023", handler="function.handler")
    r, body = daemon.invoke("ex-bash", {"name": "sandbox"})
    assert "FunctionError" not in r, body
    assert body.decode().startswith("Echoing request:"), body


def test_example_hello_cpp(daemon):
    candidates = [os.environ.get("LAMBENT_HELLO_CPP", ""),
                  os.path.join(os.path.dirname(lambent_bin()), "examples", "hello-cpp-bootstrap")]
    binary = next((c for c in candidates if c and os.path.exists(c)), None)
    if binary is None:
        pytest.skip("hello-cpp-bootstrap not built next to the lambent binary")
    with open(binary, "rb") as f:
        daemon.create("ex-cpp", {"bootstrap": (f.read(), 0o755)}, runtime="provided.al2023",
                      handler="hello")
    r, body = daemon.invoke("ex-cpp", {"name": "sandbox"})
    assert "FunctionError" not in r, body
    assert b"sandbox" in body or b"Hello" in body, body


def test_python_and_node_runtime_sandbox_view(daemon):
    # The managed runtimes see Lambda's fixed paths and an unprivileged user.
    node_src = ("export const handler = async () => ({uid: process.getuid(), "
                "cwd: process.cwd(), task: process.env.LAMBDA_TASK_ROOT, "
                "api: process.env.AWS_LAMBDA_RUNTIME_API});\n")
    daemon.create("view-node", {"index.mjs": node_src}, runtime="nodejs20.x",
                  handler="index.handler")
    out = run(daemon, "view-node", {})
    assert out == {"uid": 993, "cwd": "/var/task", "task": "/var/task", "api": "127.0.0.1:9001"}


# ---- network (egress) ----

@pytest.fixture(scope="module")
def egress_daemon():
    server = Lambent(isolation="namespaces", extra_args=[
        "--egress", "egress", "--runtime-dir", os.path.join(ROOT, "runtimes")])
    yield server
    code = server.stop()
    log = server.log()
    server.close()
    assert code == 0, "lambent serve did not shut down cleanly:\n" + log[-5000:]


def test_egress_reaches_the_host_side_and_no_egress_does_not(daemon, egress_daemon):
    # Only addresses on this machine: the host side of the environment's pair.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))
    listener.listen(4)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    marker = uuid.uuid4().hex
    try:
        deploy_probe(egress_daemon, "net")
        out = run(egress_daemon, "net", {"check": "egress", "port": port, "marker": marker})
        assert out["names"] == ["lo", "eth0"], out
        assert out["host"].startswith("10.201."), out
        assert out.get("sent") is True
        conn, peer = listener.accept()
        with conn:
            assert conn.recv(100).decode() == marker
        assert peer[0].startswith("10.201."), peer

        # The daemon listens on 127.0.0.1: the environment's 127.0.0.1 is its own.
        reach = run(egress_daemon, "net", {"check": "connect", "targets": [
            ["127.0.0.1", egress_daemon.port], [out["host"], egress_daemon.port]]})
        assert all(r["ok"] is False for r in reach.values()), reach

        # Two egress environments cannot reach each other through the host.
        deploy_probe(egress_daemon, "net2")
        other = run(egress_daemon, "net2", {"check": "egress", "port": port, "marker": marker})
        listener.accept()[0].close()
        env_addr = peer[0]
        cross = run(egress_daemon, "net2", {"check": "connect", "targets": [[env_addr, 9001]]})
        assert all(r["ok"] is False for r in cross.values()), cross
        assert other["host"] != out["host"]

        # Without egress: no interface but lo, no host address, no route.
        plain = run(daemon, "probe", {"check": "egress", "port": port, "marker": marker})
        assert plain == {"host": None, "names": ["lo"]}
        blocked = run(daemon, "probe", {"check": "connect", "targets": [[out["host"], port]]})
        assert all(r["ok"] is False for r in blocked.values()), blocked
    finally:
        listener.close()
