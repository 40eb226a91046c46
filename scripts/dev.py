"""Run Keel for development: the Django dev server, a Celery worker and Celery beat, in one terminal.

Each process's output is prefixed with its name. Ctrl-C (or SIGTERM) stops all of them; if one of them exits on
its own, the others are stopped too and this script exits with its status. Used by `make run`, which migrates and
loads the demo data first. Without REDIS_URL the broker is kombu's filesystem transport under var/broker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLOURS = {"web": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}
RESET = "\033[0m"
STOP_GRACE_SECONDS = 20.0  # a Celery warm shutdown takes a few seconds

_print_lock = threading.Lock()


def var_dir() -> Path:
    return Path(os.environ.get("KEEL_VAR_DIR") or ROOT / "var")


def commands(host: str, port: int) -> dict[str, list[str]]:
    python = str(BIN / "python")
    celery = [python, "-m", "celery", "-A", "msp"]
    return {
        "web": [python, "manage.py", "runserver", f"{host}:{port}"],
        # One process pool of two: enough to show concurrency without crowding a laptop.
        "worker": [*celery, "worker", "--loglevel=INFO", "--concurrency=2", "--without-gossip", "--without-mingle"],
        "beat": [*celery, "beat", "--loglevel=INFO"],
    }


def pump(name: str, stream: IO[str], colour: bool) -> None:
    label = f"{COLOURS.get(name, '')}{name:>6} |{RESET}" if colour else f"{name:>6} |"
    for line in stream:
        with _print_lock:
            sys.stdout.write(f"{label} {line}")
            sys.stdout.flush()


def start(name: str, argv: list[str], colour: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "msp.settings"}
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        # Own process group: Ctrl-C reaches only this script, which then stops each group in order
        # (runserver's autoreloader and celery's pool children go with their parent).
        start_new_session=True,
    )
    if process.stdout is None:  # cannot happen with stdout=PIPE; narrows the type
        raise RuntimeError(f"{name}: no output pipe")
    threading.Thread(target=pump, args=(name, process.stdout, colour), daemon=True).start()
    return process


def stop(processes: dict[str, subprocess.Popen[str]]) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            continue
        if name == "web":
            # runserver's autoreloader parent does not pass signals on to the child that serves: signal both.
            _signal_group(process, signal.SIGINT)
        else:
            # Celery's main process shuts its pool down itself (a warm shutdown finishes the running tasks).
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        else:
            _signal_group(process, signal.SIGKILL)  # anything left in the group (an orphaned pool child)


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--only", nargs="+", choices=["web", "worker", "beat"], help="start only these processes")
    args = parser.parse_args()

    for sub in ("broker/queue", "broker/processed", "mail", "media"):
        (var_dir() / sub).mkdir(parents=True, exist_ok=True)

    colour = sys.stdout.isatty()
    wanted = {name: argv for name, argv in commands(args.host, args.port).items() if not args.only or name in args.only}
    # Explicit, because a shell starts background jobs with SIGINT ignored and Python then keeps it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    processes: dict[str, subprocess.Popen[str]] = {}
    status = 0
    try:
        for name, argv in wanted.items():
            processes[name] = start(name, argv, colour)
        print(f"Keel is starting on http://{args.host}:{args.port}/ ({', '.join(processes)}); Ctrl-C stops it.")
        while True:
            for name, process in processes.items():
                code = process.poll()
                if code is not None:
                    print(f"{name} exited with status {code}; stopping the others.", file=sys.stderr)
                    # A signal's death (-N) exits as a shell would report it (128 + N); a clean exit is still a stop.
                    status = 128 - code if code < 0 else code or 1
                    raise SystemExit(status)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", file=sys.stderr)
    except SystemExit:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave orphans behind
        stop(processes)
        print("Stopped.", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
