"""Background processes for the local stack: start detached, find again, stop cleanly.

Each managed process has a pid file and a log file under the run directory
(``.run/`` by default). ``start`` is idempotent: a process whose pid file names a
live process with the same command is left alone, so ``make up`` after a crash
starts only what is missing. ``stop`` signals the whole process group and waits,
escalating to SIGKILL, so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` names a running process (not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passes; return the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        if _safe(check):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


@dataclass
class ManagedProcess:
    """A long-running command of the local stack."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    ready: Callable[[], bool] = lambda: True
    where: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 60.0

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid if that process still runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def is_running(self) -> bool:
        """Whether the process recorded in the pid file is alive."""
        return self.pid() is not None

    def start(self) -> bool:
        """Start unless already running; wait until ready. Return True if started now."""
        if self.is_running():
            return False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                list(self.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))

        def ready_or_dead() -> bool:
            if proc.poll() is not None:
                raise_died()
            return self.ready()

        def raise_died() -> None:
            tail = self.log_file.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(
                f"{self.name} exited with {proc.returncode} during start-up; "
                f"log {self.log_file}:\n" + "\n".join(tail)
            )

        deadline = time.monotonic() + self.ready_timeout_s
        while not _safe(ready_or_dead):
            if proc.poll() is not None:
                raise_died()
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"{self.name} was not ready within {self.ready_timeout_s:.0f} s; "
                    f"see {self.log_file}"
                )
            time.sleep(0.2)
        log.info("started", service=self.name, pid=proc.pid, where=self.where)
        return True

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the process group (TERM, then KILL). Return True if something was stopped."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_group(pid, timeout_s)
        log.info("stopped", service=self.name, pid=pid)
        return True


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except RuntimeError:
        raise
    except Exception:  # noqa: BLE001 - a failing readiness probe means "not yet"
        return False


def stop_group(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL what remains."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        if wait_until(lambda: not pid_alive(pid), timeout_s if sig == signal.SIGTERM else 5):
            return
