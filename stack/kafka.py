"""A real single-node Apache Kafka (KRaft, combined broker+controller) for development and tests.

The classpath is assembled from Maven Central with ``mvn`` (see ``stack/kafka/pom.xml``) and
cached under ``<cache_dir>/kafka/<version>/libs``; the broker runs on the installed Java 17+
as a detached process whose pid is kept in its data directory, so another process (the CLI)
can stop it. Readiness means an admin call succeeds, not merely an open port.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from opsmetrics.settings import Settings

log = structlog.get_logger()

STACK_DIR = Path(__file__).resolve().parent / "kafka"
POM = STACK_DIR / "pom.xml"
LOG4J_CONFIG = STACK_DIR / "log4j2.yaml"
MIN_JAVA = 17
SCRAM_MECHANISM = "SCRAM-SHA-256"
APT_PACKAGES = {"java": "openjdk-17-jre-headless", "mvn": "maven"}
_MARKER = ".complete"


class KafkaStackError(RuntimeError):
    """The local Kafka could not be assembled, started, reached or stopped."""


def _pom_property(name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", POM.read_text("utf-8"))
    if not match:
        raise KafkaStackError(f"{POM}: property <{name}> not found")
    return match.group(1).strip()


KAFKA_VERSION = _pom_property("kafka.version")
LOG4J_VERSION = _pom_property("log4j.version")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` makes it, without starting a JVM.

    Kafka's ``Uuid.randomUuid()``: 16 random bytes, URL-safe base64 without padding, never
    starting with ``-``.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def admin_ping(client_options: dict[str, object], timeout_s: float = 5.0) -> bool:
    """True if a kafka-python admin client can list topics with these options in time."""
    ms = max(1000, int(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(
            **client_options,
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            reconnect_backoff_max_ms=500,
        )
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


# --- tools -------------------------------------------------------------------------------


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log.info("kafka.apt_install", package=package)
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaStackError(
                f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )


def _require_tool(tool: Literal["java", "mvn"]) -> str:
    """Path of ``java``/``mvn``; install it with apt-get when root, else explain what to do."""
    path = _java() if tool == "java" else shutil.which("mvn")
    if path:
        return path
    package = APT_PACKAGES[tool]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install(package)
        path = _java() if tool == "java" else shutil.which("mvn")
        if path:
            return path
    raise KafkaStackError(
        f"`{tool}` not found on PATH. Install the Debian package {package!r} "
        f"(apt-get install {package}) or put {tool} on PATH"
        + (" and set JAVA_HOME" if tool == "java" else "")
    )


def java_major(java: str) -> int:
    """Major version of the given ``java`` binary (8 for ``1.8.0_x``)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise KafkaStackError(f"cannot read the Java version from `{java} -version`: {out.stderr}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def ensure_java() -> str:
    """Path of a Java >= 17 runtime (installed with apt-get if missing and allowed)."""
    java = _require_tool("java")
    major = java_major(java)
    if major < MIN_JAVA:
        raise KafkaStackError(
            f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+. "
            f"Install {APT_PACKAGES['java']!r} and point JAVA_HOME at it"
        )
    return java


# --- jars ----------------------------------------------------------------------------------


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _jars_dir(cache_dir: Path) -> Path:
    return cache_dir / "kafka" / KAFKA_VERSION


def jars_cached(cache_dir: Path) -> bool:
    """True when the jars for this pom.xml were copied completely."""
    home = _jars_dir(cache_dir)
    marker = home / _MARKER
    return marker.is_file() and marker.read_text("utf-8").strip() == _pom_digest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars(cache_dir: Path) -> Path:
    """Directory of the broker's runtime jars, running ``mvn`` once per pom.xml version.

    The marker file is written only after a complete copy, so an interrupted copy is redone;
    a cached call does not start ``mvn`` (or anything else).
    """
    home = _jars_dir(cache_dir)
    libs = home / "libs"
    if jars_cached(cache_dir):
        return libs
    with _locked(home / ".lock"):
        if jars_cached(cache_dir):  # another process finished while we waited
            return libs
        ensure_java()
        mvn = _require_tool("mvn")
        (home / _MARKER).unlink(missing_ok=True)
        staging = home / "libs.partial"
        for stale in (staging, libs):
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        log.info("kafka.jars_assembling", kafka=KAFKA_VERSION, log4j=LOG4J_VERSION, into=str(libs))
        cmd = [
            mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        jars = list(staging.glob("*.jar"))
        if result.returncode != 0 or not jars:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise KafkaStackError(
                f"mvn could not assemble Kafka {KAFKA_VERSION} (exit {result.returncode}); "
                f"is Maven Central reachable (or a mirror in ~/.m2/settings.xml)?\n{output}"
            )
        staging.rename(libs)
        (home / _MARKER).write_text(_pom_digest() + "\n", "utf-8")
        log.info(
            "kafka.jars_ready",
            jars=len(jars),
            seconds=round(time.monotonic() - started, 1),
            into=str(libs),
        )
    return libs


# --- broker --------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie is dead


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return f"({path} missing)"
    return "\n".join(text.splitlines()[-lines:])


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class KafkaBroker:
    """One local KRaft node (``process.roles=broker,controller``) rooted at ``data_dir``.

    ``data_dir`` holds ``server.properties``, the KRaft log dir (``kraft/``), the broker
    logs (``logs/server.log``, ``logs/console.log``) and ``kafka.pid``. With
    ``listener_security="SASL_PLAINTEXT"`` the client listener requires SCRAM-SHA-256;
    ``scram_users`` (name -> password) are created at format time and the first user is
    also the inter-broker identity. The controller listener stays PLAINTEXT on loopback.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9094  # never 9093: Alertmanager's cluster port
    heap_mb: int = 512
    listener_security: Literal["PLAINTEXT", "SASL_PLAINTEXT"] = "PLAINTEXT"
    scram_users: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.controller_port == 9093:
            raise KafkaStackError("controller_port 9093 is reserved for Alertmanager")
        if self.port == self.controller_port:
            raise KafkaStackError("port and controller_port must differ")
        if self.listener_security == "SASL_PLAINTEXT" and not self.scram_users:
            raise KafkaStackError("SASL_PLAINTEXT needs at least one entry in scram_users")
        for name, password in self.scram_users.items():
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or re.search(r'[\s"\\,\[\]]', password):
                raise KafkaStackError(
                    f"SCRAM user {name!r}: names are [A-Za-z0-9._-]+ and passwords "
                    'may not contain whitespace or any of " \\ , [ ]'
                )

    # paths
    @property
    def properties_file(self) -> Path:
        """The generated ``server.properties``."""
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        """KRaft metadata and topic data (``log.dirs``)."""
        return self.data_dir / "kraft"

    @property
    def logs_dir(self) -> Path:
        """Broker logs: ``server.log`` (log4j) and ``console.log`` (stdout/stderr)."""
        return self.data_dir / "logs"

    @property
    def pid_file(self) -> Path:
        """The running broker's pid."""
        return self.data_dir / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    def client_options(self) -> dict[str, object]:
        """kafka-python/aiokafka connection options for this broker (SCRAM as first user)."""
        opts: dict[str, object] = {
            "bootstrap_servers": [self.bootstrap],
            "security_protocol": self.listener_security,
        }
        if self.listener_security == "SASL_PLAINTEXT":
            user, password = next(iter(self.scram_users.items()))
            opts |= {
                "sasl_mechanism": SCRAM_MECHANISM,
                "sasl_plain_username": user,
                "sasl_plain_password": password,
            }
        return opts

    # config
    def server_properties(self) -> dict[str, str]:
        """The single-node broker settings written to ``server.properties``."""
        sec = self.listener_security
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": f"{sec}://{self.host}:{self.port},CONTROLLER://{self.host}:"
            f"{self.controller_port}",
            "advertised.listeners": f"{sec}://{self.host}:{self.port}",
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{sec}:{sec}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": sec,
            "log.dirs": str(self.log_dir),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "3",
            "num.io.threads": "8",
            "log.retention.hours": "168",
            "log.segment.bytes": "1073741824",
        }
        if sec == "SASL_PLAINTEXT":
            user, password = next(iter(self.scram_users.items()))
            props |= {
                "sasl.enabled.mechanisms": SCRAM_MECHANISM,
                "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
                f"listener.name.{sec.lower()}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{_jaas_quote(user)}" password="{_jaas_quote(password)}";'
                ),
            }
        return props

    def _write_properties(self) -> None:
        body = "".join(f"{k}={v}\n" for k, v in self.server_properties().items())
        self.properties_file.write_text(
            "# Generated by stack/kafka.py on each start; edits are overwritten.\n" + body, "utf-8"
        )
        self.properties_file.chmod(0o600)  # may hold SCRAM passwords

    def _java_cmd(self, java: str, libs: Path, main: str, *args: str) -> list[str]:
        return [
            java,
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.logs_dir}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def formatted(self) -> bool:
        """True once the KRaft log dir has been formatted."""
        return (self.log_dir / "meta.properties").is_file()

    def _format(self, java: str, libs: Path) -> None:
        cluster_id = new_cluster_id()
        args = ["format", "--standalone", "-g", "-t", cluster_id, "-c", str(self.properties_file)]
        for user, password in self.scram_users.items():
            args += ["--add-scram", f'{SCRAM_MECHANISM}=[name={user},password="{password}"]']
        out = subprocess.run(
            self._java_cmd(java, libs, "kafka.tools.StorageTool", *args),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise KafkaStackError(
                f"StorageTool format failed ({out.returncode}): {(out.stdout + out.stderr)[-2000:]}"
            )
        log.info("kafka.formatted", cluster_id=cluster_id, log_dir=str(self.log_dir))

    # lifecycle
    def pid(self) -> int | None:
        """Pid of this data dir's broker if it is running, else None (stale pid files ignored)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid  # our child; its /proc cmdline can be empty just after exec
        try:
            pid = int(self.pid_file.read_text("utf-8").strip())
        except (OSError, ValueError):
            return None
        if not _pid_alive(pid):
            return None
        cmd = _cmdline(pid)
        if "kafka.Kafka" not in cmd or str(self.properties_file) not in cmd:
            return None  # pid reused by something else
        return pid

    def is_running(self) -> bool:
        """True while this data dir's broker process is alive."""
        return self.pid() is not None

    def start(self) -> None:
        """Write the config, format storage on first use and launch the broker detached.

        Returns at once; call :meth:`wait_ready`. Does nothing if the broker is running.
        """
        if (pid := self.pid()) is not None:
            log.info("kafka.already_running", pid=pid, bootstrap=self.bootstrap)
            return
        java = ensure_java()
        libs = ensure_jars(self.cache_dir or _default_cache_dir())
        for directory in (self.data_dir, self.log_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        if not self.formatted():
            self._format(java, libs)
        cmd = self._java_cmd(java, libs, "kafka.Kafka", str(self.properties_file))
        with (self.logs_dir / "console.log").open("ab") as console:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n", "utf-8")
        log.info("kafka.started", pid=self._proc.pid, bootstrap=self.bootstrap)

    def answers(self, timeout_s: float = 5.0) -> bool:
        """True if the broker answers an admin call (list topics) within ``timeout_s``."""
        return admin_ping(self.client_options(), timeout_s)

    def failure_report(self, lines: int = 40) -> str:
        """The last ``lines`` lines of ``server.log`` and ``console.log``."""
        return (
            f"--- {self.logs_dir / 'server.log'} ---\n{_tail(self.logs_dir / 'server.log', lines)}"
            f"\n--- {self.logs_dir / 'console.log'} ---\n"
            f"{_tail(self.logs_dir / 'console.log', lines)}"
        )

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Block until an admin call (list topics) succeeds; return the seconds waited.

        Raises :class:`KafkaStackError` with the log tail if the process dies or time runs out.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            if not self.is_running():
                raise KafkaStackError(
                    f"Kafka at {self.data_dir} exited before it was ready\n{self.failure_report()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaStackError(
                    f"Kafka at {self.bootstrap} not ready after {timeout_s:.0f}s\n"
                    f"{self.failure_report()}"
                )
            if self.answers(min(5.0, max(1.0, remaining))):
                waited = time.monotonic() - started
                log.info("kafka.ready", bootstrap=self.bootstrap, seconds=round(waited, 1))
                return waited
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM the broker, SIGKILL it after ``timeout_s``; leaves no process behind."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout_s):
                log.warning("kafka.kill", pid=pid, after_s=timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)  # the broker leads its own session
                if not self._wait_exit(pid, 10):
                    raise KafkaStackError(f"Kafka pid {pid} survived SIGKILL")
            log.info("kafka.stopped", pid=pid, bootstrap=self.bootstrap)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=0.1)  # reap our own child
                if self._proc.returncode is not None:
                    return True
            elif not _pid_alive(pid):
                return True
            else:
                time.sleep(0.1)
        return not _pid_alive(pid)


def _default_cache_dir() -> Path:
    return Settings().cache_dir
