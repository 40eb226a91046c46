"""What benchmarks share: the result record, the run context, a gunicorn server and a bounded HTTP load client.

Every number is reported next to a *floor* measured in the same run on the same machine (the same server, the
same rows, …), and judged by the ratio between them, so results stay comparable across machines.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Result:
    """One row of the table and of bench/results.json.

    ``ratio`` is ``value / floor``. With ``higher_is_better`` (throughput) the row is ok when ``ratio >= target``;
    otherwise (latency, time) when ``ratio <= target``.
    """

    name: str
    value: float
    unit: str
    floor: float
    target: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 3),
            "unit": self.unit,
            "floor": round(self.floor, 3),
            "ratio": round(self.ratio, 4),
            "target": self.target,
            "ok": self.ok,
        }


@dataclass
class Context:
    """Handed to every benchmark: where the benchmark database is and how to reach Keel."""

    database_url: str
    redis_url: str | None
    var_dir: Path
    quick: bool = False
    _django_ready: bool = field(default=False, repr=False)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a benchmark process: Keel's settings on the benchmark database, DEBUG off."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "KEEL_ENV": "development",
            "DEBUG": "false",
            "ALLOWED_HOSTS": f"{LOOPBACK},localhost",
            "DATABASE_URL": self.database_url,
            "KEEL_VAR_DIR": str(self.var_dir),
            "LOG_LEVEL": "WARNING",
            # Throttles still run (their cache round trip is part of every API request) but never refuse the load.
            "API_KEY_RATE": "1000000/min",
            "API_PUBLIC_RATE": "1000000/min",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
        env.pop("CELERY_BROKER_URL", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        else:
            env.pop("REDIS_URL", None)
        return env

    def setup_django(self) -> None:
        """For in-process benchmarks (ORM, services): configure Django in this process on the benchmark database."""
        if self._django_ready:
            return
        os.environ.update(self.env())
        import django

        django.setup()
        self._django_ready = True

    @contextlib.contextmanager
    def gunicorn(self, *, workers: int = 2, startup_path: str = "/bench/bare") -> Iterator[int]:
        """Serve Keel (bench.settings) with gunicorn on a free loopback port; yields the port."""
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="keel-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        argv = [
            str(BIN / "gunicorn"),
            "msp.wsgi:application",
            f"--bind={LOOPBACK}:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--error-logfile=-",
            "--log-level=warning",
        ]
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(port, startup_path, process, Path(log.name))
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            Path(log.name).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(port: int, path: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not serve {path} within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def http_load(
    port: int,
    path: str,
    *,
    requests: int,
    threads: int = 4,
    time_cap: float = 20.0,
    headers: Mapping[str, str] | None = None,
    expect_status: int = 200,
) -> LoadResult:
    """GET ``path`` on the loopback server until ``requests`` are done or ``time_cap`` seconds pass.

    Each thread keeps one HTTP/1.1 connection open (http.client reconnects when the server closes it). A response
    with another status than ``expect_status`` aborts the run: a failing endpoint has no throughput.
    """
    if requests <= 0 or threads <= 0:
        raise ValueError("requests and threads must be positive")
    lock = threading.Lock()
    issued = 0
    completed = 0
    failures: list[str] = []
    start = threading.Barrier(threads + 1)
    deadline_box: list[float] = []

    def take_ticket() -> bool:
        nonlocal issued
        with lock:
            if failures or issued >= requests or time.monotonic() > deadline_box[0]:
                return False
            issued += 1
            return True

    def client() -> None:
        nonlocal completed
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        start.wait()
        try:
            while take_ticket():
                connection.request("GET", path, headers=dict(headers or {}))
                response = connection.getresponse()
                body = response.read()
                if response.status != expect_status:
                    with lock:
                        failures.append(f"HTTP {response.status}: {body[:300]!r}")
                    return
                with lock:
                    completed += 1
        except OSError as exc:
            with lock:
                failures.append(repr(exc))
        finally:
            connection.close()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    deadline_box.append(time.monotonic() + time_cap)
    began = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join(timeout=time_cap + 60)
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"GET {path} failed: {failures[0]}")
    return LoadResult(requests=completed, seconds=elapsed)


def http_latencies(port: int, path: str, *, requests: int, headers: Mapping[str, str] | None = None) -> list[float]:
    """GET ``path`` ``requests`` times, one after another on one kept-alive connection; each request's seconds.

    Sequential on purpose: this measures what one caller waits, not what the server can do at once.
    """
    timings: list[float] = []
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        for _ in range(requests):
            began = time.perf_counter()
            connection.request("GET", path, headers=dict(headers or {}))
            response = connection.getresponse()
            body = response.read()
            timings.append(time.perf_counter() - began)
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()
    return timings
