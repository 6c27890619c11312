"""A real two-node Ray cluster on this machine for the tests: `ray start --head` and `ray start
--address` on 127.0.0.1, each node with its own ports, temp dir and session (so that every process
it starts, workers included, can be found and killed: nothing outlives the test).

    with RayCluster(cpus=(1, 2)) as cluster:       # head (1 CPU) + one more node (2 CPUs)
        cluster.address        # "127.0.0.1:PORT" for ray.init / --ray-address
        cluster.kill_node(1)   # SIGKILL the second node's raylet and all its processes
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optimlab

RAY = str(Path(sys.executable).with_name("ray"))
SRC = str(Path(optimlab.__file__).resolve().parents[1])  # the optimlab under test, for the nodes' workers
START_TIMEOUT_S = 90


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`."""
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True, check=True).stdout
    return [
        int(p)
        for p, s, st in (ln.split(None, 2) for ln in out.splitlines() if ln.strip())
        if int(s) == sid and "Z" not in st
    ]


# Ray's token authentication off for this cluster, which listens on 127.0.0.1 only and lives for
# one test: whether ~/.ray/auth_token exists must not matter, and a driver in this process has read
# its authentication mode when it first imported ray (a token set later would not be seen).
AUTH_ENV = {"RAY_AUTH_MODE": "disabled"}


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", **AUTH_ENV)
    return env


class RayCluster:
    def __init__(self, cpus: tuple[int, ...] = (1, 1)) -> None:
        self.cpus = cpus  # CPUs of each node, the head first
        self.root = Path(tempfile.mkdtemp(prefix="olray"))  # short: Ray's socket paths must fit 107 chars
        self.sids: list[int] = []
        self.address = ""

    def _start(self, index: int) -> None:
        p = _free_ports(9)
        cmd = [RAY, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus[index]), "--num-gpus", "0"]
        cmd += ["--temp-dir", str(self.root / f"n{index}"), "--disable-usage-stats", "--log-style", "record"]
        cmd += ["--node-manager-port", str(p[1]), "--object-manager-port", str(p[2])]
        cmd += ["--min-worker-port", str(p[3]), "--max-worker-port", str(p[3] + 50)]
        cmd += ["--runtime-env-agent-port", str(p[4]), "--metrics-export-port", str(p[5])]
        cmd += ["--dashboard-agent-listen-port", str(p[6]), "--dashboard-agent-grpc-port", str(p[7])]
        cmd += ["--object-store-memory", str(80 * 2**20)]
        if index == 0:
            cmd += [
                "--head",
                "--port",
                str(p[0]),
                "--include-dashboard",
                "false",
                "--ray-client-server-port",
                str(p[8]),
            ]
            # notice a dead node within ~2 s instead of the default ~30 s
            cmd += ["--system-config", json.dumps({"health_check_period_ms": 500, "health_check_failure_threshold": 4})]
            self.address = f"127.0.0.1:{p[0]}"
        else:
            cmd += ["--address", self.address]
        proc = subprocess.Popen(
            cmd, env=node_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.sids.append(proc.pid)  # the session every process of this node is in
        out, _ = proc.communicate(timeout=START_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start (node {index}) failed:\n{out[-3000:]}")

    def __enter__(self) -> RayCluster:
        self._saved_env = {k: os.environ.get(k) for k in AUTH_ENV}
        os.environ.update(AUTH_ENV)
        try:
            for i in range(len(self.cpus)):
                self._start(i)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            for k, v in self._saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def raylet_pid(self, index: int) -> int:
        for pid in session_pids(self.sids[index]):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet":
                    return pid
            except OSError:
                continue
        raise LookupError(f"no raylet in node {index}'s session")

    def kill_node(self, index: int) -> None:
        """The node dies: SIGKILL its raylet, then every other process of it (a worker survives its
        raylet for a while and would still report a finished run to the driver)."""
        os.kill(self.raylet_pid(index), signal.SIGKILL)
        for pid in session_pids(self.sids[index]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM every process of every node, SIGKILL what is left after a grace period."""
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            for sid in self.sids:
                for pid in session_pids(sid):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(session_pids(s) for s in self.sids):
                time.sleep(0.2)
        left = {sid: session_pids(sid) for sid in self.sids}
        shutil.rmtree(self.root, ignore_errors=True)
        if any(left.values()):
            raise RuntimeError(f"Ray processes survived the teardown: {left}")
