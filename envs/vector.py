"""N envs in spawned worker processes that survive their workers: a crash or hang costs one episode, never the run.

Generic over back-ends: workers build `envs.make_env(name, **options)`, so RLBench or any registered env can use it.
Workers use the `spawn` start method, because forking a process that holds an EGL context hangs (sim.md pitfall 6).

Auto-reset follows gymnasium's "next step" rule: after a step that ends an episode (terminated or truncated), the next
`step` ignores that env's action and returns the first observation of a new episode with reward 0. `info["first"]`
marks every first observation. When a worker crashes or exceeds `timeout`, it is killed and restarted, its partial
episode is dropped (`info["dropped"]` is True on the new first observation) and `dropped_episodes` counts it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from envs.common import check_action
from lamp.errors import UsageError


def _worker(conn: Connection, name: str, options: dict[str, Any]) -> None:
    """Worker loop: build the env, then answer ("reset", seed) / ("step", action) / ("close", None) until closed.

    Ctrl-C and SIGTERM go to the whole process group (a terminal, systemd, Slurm): the parent handles them and closes
    the workers. So SIGINT is ignored, and SIGTERM ends an idle worker at once but lets a busy one send its answer
    first (the parent is waiting for it). A parent that is gone ends the loop quietly, without a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    state = {"busy": False, "stop": False}

    def on_sigterm(signum: int, frame: Any) -> None:
        if not state["busy"]:
            raise SystemExit(0)
        state["stop"] = True

    signal.signal(signal.SIGTERM, on_sigterm)
    env = None
    try:
        state["busy"] = True
        try:
            import envs

            env = envs.make_env(name, **options)
        except Exception as err:  # report construction errors (bad config) to the parent instead of dying silently
            conn.send(("error", (type(err).__name__, str(err), traceback.format_exc())))
            return
        conn.send(("ready", (env.observation_space, env.action_space)))
        while not state["stop"]:
            state["busy"] = False
            command, payload = conn.recv()
            state["busy"] = True
            if command == "close":
                break
            try:
                if command == "reset":
                    result: Any = env.reset(seed=payload)
                elif command == "step":
                    result = env.step(payload)
                else:
                    raise ValueError(f"unknown command {command!r}")
                conn.send(("ok", result))
            except Exception as err:
                conn.send(("error", (type(err).__name__, str(err), traceback.format_exc())))
    except (EOFError, OSError):
        pass  # the parent closed the pipe or died: nobody is left to answer
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        conn.close()


class VectorEnv:
    """`num_envs` copies of a registered env, each in its own process, stepped in lock-step.

    Returns stacked observations (dict of arrays with a leading env axis), float32 rewards, bool terminated/truncated
    arrays and a list of per-env info dicts (each with `first` and `dropped` added).
    """

    def __init__(
        self,
        name: str,
        num_envs: int,
        options: dict[str, Any] | None = None,
        timeout: float = 60.0,
        start_timeout: float = 300.0,
        seed: int | None = None,
        max_restarts: int = 100,
    ) -> None:
        if num_envs < 1:
            raise UsageError(f"env.workers must be at least 1, got {num_envs}")
        if timeout <= 0:
            raise UsageError(f"env.worker_timeout must be positive, got {timeout}")
        self.name = name
        self.num_envs = num_envs
        self.options = dict(options or {})
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.seed = seed
        self.dropped_episodes = 0
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._procs: list[Any] = [None] * num_envs
        self._conns: list[Connection | None] = [None] * num_envs
        self._done = [True] * num_envs  # next step() of a finished env resets it
        self._closed = False
        self.single_observation_space: Any = None  # one env's spaces, as reported by the first worker
        self.single_action_space: Any = None
        for i in range(num_envs):
            self._start(i)
        for i in range(num_envs):
            self._wait_ready(i)

    # ---------------------------------------------------------------------------------------------------------------
    def _worker_options(self, index: int) -> dict[str, Any]:
        options = dict(self.options)
        if self.seed is not None:  # distinct, reproducible stream per env slot and per restart
            options["seed"] = int(np.random.SeedSequence([self.seed, index, self.restarts]).generate_state(1)[0])
        return options

    def _start(self, index: int) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker, args=(child, self.name, self._worker_options(index)), daemon=True, name=f"lamp-env-{index}"
        )
        proc.start()
        child.close()
        self._procs[index], self._conns[index] = proc, parent

    def _wait_ready(self, index: int) -> None:
        conn = self._conns[index]
        assert conn is not None
        if not conn.poll(self.start_timeout):
            self._kill(index)
            raise RuntimeError(f"env worker {index} for '{self.name}' did not start within {self.start_timeout:.0f} s")
        try:
            status, payload = conn.recv()
        except EOFError:
            self._kill(index)
            raise RuntimeError(f"env worker {index} for '{self.name}' died while starting") from None
        if status == "ready" and self.single_observation_space is None:
            self.single_observation_space, self.single_action_space = payload
        if status == "error":
            self.close()
            kind, message, _ = payload
            if kind == "UsageError":
                raise UsageError(message)
            raise RuntimeError(f"env worker {index} for '{self.name}' failed to start: {kind}: {message}")

    def _kill(self, index: int) -> None:
        proc, conn = self._procs[index], self._conns[index]
        if conn is not None:
            conn.close()
        if proc is not None and proc.is_alive():
            proc.kill()
        if proc is not None:
            proc.join(timeout=10)
        self._procs[index], self._conns[index] = None, None

    def _restart(self, index: int) -> None:
        """Replace a crashed or hung worker; its episode is lost."""
        self.restarts += 1
        if self.restarts > self.max_restarts:
            self.close()
            raise RuntimeError(f"env workers for '{self.name}' crashed {self.restarts} times; giving up")
        self._kill(index)
        self._start(index)
        self._wait_ready(index)

    def _send(self, index: int, command: str, payload: Any) -> bool:
        conn = self._conns[index]
        try:
            assert conn is not None
            conn.send((command, payload))
            return True
        except (OSError, ValueError, AssertionError):  # broken pipe: the worker is gone
            return False

    def _receive(self, index: int, deadline: float) -> tuple[bool, Any]:
        """(ok, result); ok is False if the worker died, hung past the deadline or raised."""
        conn = self._conns[index]
        try:
            assert conn is not None
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                return False, "timeout"
            status, payload = conn.recv()
        except (EOFError, OSError, AssertionError):
            return False, "crash"
        return status == "ok", payload

    # ---------------------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Reset every env (env i gets seed + i when a seed is given)."""
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        sent = [self._send(i, "reset", seeds[i]) for i in range(self.num_envs)]
        deadline = time.monotonic() + self.timeout
        results: list[Any] = []
        for i in range(self.num_envs):
            ok, result = self._receive(i, deadline) if sent[i] else (False, "crash")
            if not ok:
                result = self._recover(i, seeds[i], count=False, why=result)
            obs, info = result
            results.append((obs, {**info, "first": True, "dropped": not ok}))
            self._done[i] = False
        return self._stack([r[0] for r in results]), [r[1] for r in results]

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Step every env with its row of `actions` (shape (num_envs, 4)); finished envs are reset instead."""
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions must have shape ({self.num_envs}, 4), got {actions.shape}")
        checked = [check_action(a) for a in actions]  # bad actions fail here, in the caller, not in a worker
        resetting = list(self._done)
        sent = [
            self._send(i, *(("reset", None) if resetting[i] else ("step", checked[i]))) for i in range(self.num_envs)
        ]
        deadline = time.monotonic() + self.timeout
        obs_list, rewards, terminated, truncated, infos = [], [], [], [], []
        for i in range(self.num_envs):
            ok, result = self._receive(i, deadline) if sent[i] else (False, "crash")
            if ok and resetting[i]:
                obs, info = result
                reward, term, trunc, info = 0.0, False, False, {**info, "first": True, "dropped": False}
            elif ok:
                obs, reward, term, trunc, info = result
                info = {**info, "first": False, "dropped": False}
            else:
                obs, info = self._recover(i, None, count=not resetting[i], why=result)
                reward, term, trunc, info = 0.0, False, False, {**info, "first": True, "dropped": not resetting[i]}
            self._done[i] = bool(term or trunc)
            obs_list.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            infos.append(info)
        return (
            self._stack(obs_list),
            np.asarray(rewards, np.float32),
            np.asarray(terminated, bool),
            np.asarray(truncated, bool),
            infos,
        )

    def _recover(self, index: int, seed: int | None, count: bool, why: Any = "crash") -> tuple[dict, dict]:
        """Restart worker `index` and reset it; count its lost episode if one was under way. `why` is the failure
        that caused the restart; if the restarted worker keeps failing, the error names both failures."""
        first = why
        for _ in range(3):
            self._restart(index)
            why = "crash"
            if self._send(index, "reset", seed):
                ok, why = self._receive(index, time.monotonic() + self.timeout)
                if ok:
                    if count:
                        self.dropped_episodes += 1
                    return why
        self.close()
        last, first = self._describe(why), self._describe(first)
        also = "" if first == last else f" (before the restarts: {first})"
        raise RuntimeError(f"env worker {index} for '{self.name}' keeps failing right after a restart: {last}{also}")

    def _describe(self, failure: Any) -> str:
        """One line for a failed call: the worker's own exception, a hang or a dead process."""
        if isinstance(failure, tuple | list) and len(failure) >= 2:
            return f"{failure[0]}: {failure[1]}"
        if failure == "timeout":
            return f"no answer within env.worker_timeout ({self.timeout:g} s)"
        return "the worker process died"

    @staticmethod
    def _stack(obs_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {key: np.stack([obs[key] for obs in obs_list]) for key in obs_list[0]}

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (tests use them to kill or freeze one)."""
        return [p.pid for p in self._procs if p is not None]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for i in range(self.num_envs):
            self._send(i, "close", None)
        for i in range(self.num_envs):
            proc = self._procs[i]
            if proc is not None:
                proc.join(timeout=5)
            self._kill(i)

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter teardown may have freed what close() needs
            self.close()


def vector_from_config(env_cfg: Any, textures_cfg: Any = None, backend_cfg: Any = None, seed: int | None = None):
    """A VectorEnv with `env.workers` processes built from the `env:`/`textures:` (and back-end) config sections."""
    from envs.common import env_from_config

    name, options = env_from_config(env_cfg, textures_cfg, backend_cfg)
    return VectorEnv(name, int(env_cfg["workers"]), options, timeout=float(env_cfg["worker_timeout"]), seed=seed)
