"""`lamp ablate` end to end: a 2-cell grid through `--ray-address` on a real local Ray cluster that listens on
127.0.0.1 only, then a resume of the same grid on the local path (only the unfinished run runs again)."""

from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest


def listening(root: psutil.Process) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket of `root` and its descendants (Ray's servers and workers)."""
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            found += [
                (proc.pid, c.laddr.ip, c.laddr.port) for c in proc.net_connections("inet") if c.status == "LISTEN"
            ]
        except psutil.Error:
            continue  # a worker that just exited
    return found


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


# A local Ray cluster owned by a helper process: started with the environment below already set (Ray reads it at
# import), it prints its address, and shuts the cluster down (ray.shutdown) when its stdin closes.
CLUSTER = """
import sys, ray
context = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=sys.argv[1])
print(context.address_info["gcs_address"], flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.mark.slow
def test_ablation_grid_on_a_local_ray_cluster_then_local_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray binds its servers to the node IP; with multi-node clusters switched off that is 127.0.0.1 for every one.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Token auth stays on, with a token that lives in the environment only (nothing is written to ~/.ray).
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's unix sockets need a short path
    me = psutil.Process()
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, str(temp)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        spec = {
            "styles": ["similar", "shakespeare"],
            "seeds": [0],
            "tasks": ["push_button"],
            "configs": ["smoke"],
            "pretrain_steps": 21,
            "finetune_steps": 40,
            "eval_every": 20,
            "budgets": [20, 40],
            "flags": ["--env.episode_length", "20", "--run.prefill", "21", "--run.eval_episodes", "1"],
        }
        path = tmp_path / "ablation.yaml"
        path.write_text(json.dumps(spec))
        grid = tmp_path / "grid"
        cmd = [sys.executable, "-m", "lamp.cli", "ablate", str(path), "--logdir", str(grid), "--ray-address", address]
        log = tmp_path / "ablate.log"
        sockets = []
        with open(log, "wb") as out:
            driver = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 600
            while driver.poll() is None and time.monotonic() < deadline:
                sockets += listening(me)  # Ray's servers, its workers and the ablate driver, while the grid runs
                time.sleep(1.0)
            if driver.poll() is None:
                driver.kill()
        output = log.read_text()
        assert driver.returncode == 0, output[-4000:]
        assert sockets and all(is_loopback(ip) for _, ip, _ in sockets), sorted(set(sockets))
        assert output.count("(_ray_job pid=") > 0  # the runs' output came back from Ray workers
        for style in ("similar", "shakespeare"):
            for run, steps in (("pretrain", 21), ("push_button", 40)):
                done = json.loads((grid / style / "seed0" / run / "done.json").read_text())
                assert done["env_steps"] == steps, (style, run)
        rows = (grid / "summary.csv").read_text().splitlines()
        assert rows[0] == "arm,seed,task,budget,success" and len(rows) == 1 + 2 * 2
        assert {row.split(",")[0] for row in rows[1:]} == {"similar", "shakespeare"}
        summary = (grid / "summary.md").read_text()
        assert "| similar |" in summary and "| shakespeare |" in summary and "(n=1)" in summary
        assert (grid / "curves.png").read_bytes()[:4] == b"\x89PNG"
        done = grid / "shakespeare" / "seed0" / "push_button" / "done.json"
        done.unlink()  # as if the last fine-tuning run had been interrupted
        again = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=600)  # the local path, no Ray
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert done.is_file()
        assert again.stdout.count("resumed from") == 1  # only the unfinished run ran again, and it resumed
    finally:
        processes = [psutil.Process(cluster.pid), *psutil.Process(cluster.pid).children(recursive=True)]
        cluster.stdin.close()  # the helper shuts its cluster down and exits
        try:
            cluster.wait(timeout=60)
        finally:
            _, alive = psutil.wait_procs(processes, timeout=30)
            for proc in alive:  # only what this test started, by PID
                proc.kill()
            shutil.rmtree(temp, ignore_errors=True)
    assert not alive, [p.pid for p in alive]


def test_ray_address_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    spec = {"styles": ["similar"], "seeds": [0], "tasks": ["push_button"], "pretrain_steps": 5, "finetune_steps": 5}
    path = tmp_path / "ablation.yaml"
    path.write_text(json.dumps(spec))
    from lamp.ablate import Ablation, plan, run_grid
    from lamp.errors import UsageError

    jobs = plan(Ablation.load(path), tmp_path / "grid")
    with pytest.raises(UsageError, match=r"cannot connect to the Ray cluster at --ray-address 127.0.0.1:1 \("):
        run_grid(jobs, ray_address="127.0.0.1:1")
    assert not (tmp_path / "grid").exists()
