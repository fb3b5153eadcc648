"""`make bench` keeps running on a fresh checkout (issue 5): a quick pass of the warm figures,
and of the runtime clients' warm figures, with the binaries under test. It asserts what the run
produced and that it cleaned up, never how fast anything was — timing goals live in the
benchmark itself.
"""
import json
import os
import subprocess

from conftest import ROOT, default_isolation, lambent_bin

BENCH = os.path.join(ROOT, "bench", "run")
PARTIES = ("server", "runtimes", "loadgen", "total")


def bench_processes(build_dir):
    """pids of anything still running from the build folder's bench binaries or lambent."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            exe = os.readlink(f"/proc/{entry}/exe")
        except OSError:
            continue
        if exe.startswith(os.path.join(build_dir, "bench") + "/") or exe == lambent_bin():
            out.append(int(entry))
    return out


def test_quick_warm_figures_are_measured_with_their_baselines(tmp_path):
    build_dir = os.path.dirname(os.path.abspath(lambent_bin()))
    before = set(bench_processes(build_dir))
    out = tmp_path / "latest.json"
    p = subprocess.run([BENCH, "--quick", "--no-build", "--build-dir", build_dir, "--only",
                        "warm,runtimes",
                        "--isolation", default_isolation(), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    result = json.loads(out.read_text())

    calibration = result["machine"]["calibration"]
    assert set(calibration) == {"syscall_ns", "pipe_round_trip_us", "tcp_round_trip_us"}
    assert all(v > 0 for v in calibration.values()), calibration
    # A TCP round trip carries more than a pipe's: both include the same two process switches.
    assert calibration["tcp_round_trip_us"] > calibration["pipe_round_trip_us"], calibration

    figures = result["figures"]
    assert set(figures) == {"warm-p50", "warm-p99", "throughput", "warm-python", "warm-node"}
    for fid in ("warm-p50", "warm-p99"):
        f = figures[fid]
        assert f["value"] > 0 and f["baseline"] > 0 and f["echo"] > 0, f
        assert len(f["spread"]["values"]) == f["runs"] == 5, f
        assert isinstance(f["met"], bool)

    # Lambent's own runtime clients, and the same clients on the two-exchange limit: no target.
    for fid in ("warm-python", "warm-node"):
        f = figures[fid]
        assert f["value"] > 0 and f["baseline"] > 0 and f["p99"] > 0, f
        assert len(f["spread"]["values"]) == f["runs"] == 5, f
        assert f["met"] is None and "bench-limit-server" in f["baseline_command"], f

    t = figures["throughput"]
    assert t["errors"] == 0, t
    assert t["value"] > 0 and t["baseline"] > 0 and t["limit"] > 0, t
    cpu = t["cpu_us_per_invoke"]
    assert set(cpu) == {"lambent", "echo", "limit"}
    for name, parts in cpu.items():
        assert set(parts) == set(PARTIES), parts
        assert parts["server"] > 0 and parts["loadgen"] > 0, (name, parts)
    # Lambent's and the limit's invokes run in runtime processes; the echo server has none.
    assert cpu["lambent"]["runtimes"] > 0 and cpu["limit"]["runtimes"] > 0, cpu
    assert cpu["echo"]["runtimes"] == 0, cpu
    assert t["cpu_budget_us_at_target"] > 0
    assert t["limit_threads"] == len(os.sched_getaffinity(0)), t  # one event loop per CPU it may use

    assert "throughput CPU per invoke" in p.stdout and "machine calibration" in p.stdout, p.stdout
    assert "leftover_processes" not in result, result.get("leftover_processes")
    assert set(bench_processes(build_dir)) <= before
