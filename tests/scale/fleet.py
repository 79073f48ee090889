"""The scale-test fleet on loopback, started and torn down here.

PostgreSQL, Redis, one action server, N Rasa servers and nginx, each on a free port
with its data under one temp dir.

Debian's packages (postgresql, redis-server, nginx) provide the binaries; nothing is
installed or started system-wide. Every process is started here, in its own process
group, and stopped here by its id (also when the test fails or is interrupted).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from tests.scale.nginx_variant import SHIPPED as NGINX_CONF
from tests.scale.nginx_variant import loopback_variant
from tests.support.ports import free_port
from tests.support.servers import ACTION_SERVER, MODEL, RASA, ROOT

DEPLOY = ROOT / "deploy"
APT_PACKAGES = "postgresql redis-server nginx"
WIDGET_VENDOR = ROOT / "widget" / "node_modules" / "socket.io-client" / "dist"


class FleetError(RuntimeError):
    """A server could not be started or stopped."""


def http_status(url: str, timeout: float = 3) -> int | None:
    """GET `url`; the HTTP status, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (Debian keeps them out of the PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise FleetError(f"{name} not found: apt-get install {APT_PACKAGES}")
    return path


def check_prerequisites() -> None:
    """Fails early, saying what to install, when something the test needs is missing."""
    missing = [name for name in ("redis-server", "nginx") if not shutil.which(name)]
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        missing.append("initdb (postgresql)")
    if missing:
        raise FleetError(f"missing {missing}: apt-get install -y {APT_PACKAGES}")
    if not MODEL.exists():
        raise FleetError(f"{MODEL} is missing: run `make train` first")
    if not (WIDGET_VENDOR / "socket.io.min.js").exists():
        raise FleetError("widget/node_modules is missing: run `make widget` first")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as error:
            raise FleetError("running as root needs the `postgres` user (postgresql)") from error


@dataclass
class Proc:
    """One process of the fleet and its log file."""

    name: str
    popen: subprocess.Popen
    log: Path


@dataclass
class Fleet:
    """The whole loopback deployment. Use as a context manager."""

    workdir: Path
    rasa_servers: int = 2
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    db_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16))
    procs: Dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pg_port, self.redis_port, self.actions_port = free_port(), free_port(), free_port()
        self.rasa_ports = [free_port() for _ in range(self.rasa_servers)]
        self.public_port, self.internal_port = free_port(), free_port()
        self.pg_dir = self.workdir / "pg"
        self.pg_running = False
        self.db_name, self.db_user = "hip_triage", "rasa"

    # ------------------------------------------------------------------ helpers
    def _as_postgres(self) -> Callable[[], None] | None:
        if os.geteuid() != 0:
            return None
        user = pwd.getpwnam("postgres")

        def demote() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        return demote

    def _spawn(self, name: str, args: List[str], env: dict | None = None, **kwargs) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                args,
                cwd=kwargs.pop("cwd", ROOT),
                env=env or os.environ.copy(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, ready: Callable[[], bool], seconds: float) -> None:
        proc = self.procs.get(name)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc and proc.popen.poll() is not None:
                raise FleetError(f"{name} exited ({proc.popen.returncode}); see {proc.log}")
            if ready():
                return
            time.sleep(0.3)
        raise FleetError(f"{name} not ready after {seconds:.0f}s")

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 20) -> None:
        """Signals one of our processes (its process group) and waits for it."""
        proc = self.procs.get(name)
        if not proc or proc.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, sig)
        try:
            proc.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=10)

    # --------------------------------------------------------------- PostgreSQL
    def start_postgres(self) -> None:
        demote = self._as_postgres()
        self.pg_dir.mkdir()
        if demote:
            user = pwd.getpwnam("postgres")
            os.chown(self.pg_dir, user.pw_uid, user.pw_gid)
        subprocess.run(
            [postgres_bin("initdb"), "-D", str(self.pg_dir / "data"), "-U", "postgres",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, preexec_fn=demote, cwd="/",
        )  # fmt: skip
        self.pg_ctl("start")
        with contextlib.closing(self.pg_admin("postgres")) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE ROLE {self.db_user} LOGIN PASSWORD %s", (self.db_password,))
                cur.execute(f"CREATE DATABASE {self.db_name} OWNER {self.db_user}")

    def pg_ctl(self, action: str) -> None:
        args = [postgres_bin("pg_ctl"), "-D", str(self.pg_dir / "data"), "-w", "-t", "60"]
        if action == "start":
            options = (
                f"-p {self.pg_port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.pg_dir} -c max_connections=100"
            )
            args += ["-l", str(self.pg_dir / "postgres.log"), "-o", options, "start"]
        else:
            args += ["-m", "fast", "stop"]
        subprocess.run(
            args, check=True, capture_output=True, preexec_fn=self._as_postgres(), cwd="/"
        )
        self.pg_running = action == "start"

    def pg_admin(self, dbname: str):
        """A superuser connection over the Unix socket (trust, test cluster only)."""
        import psycopg2

        return psycopg2.connect(
            host=str(self.pg_dir), port=self.pg_port, user="postgres", dbname=dbname
        )

    def pg_connect(self):
        """A connection as the application user, over TCP with its password."""
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.pg_port, user=self.db_user,
                                password=self.db_password, dbname=self.db_name)  # fmt: skip

    # -------------------------------------------------------------------- Redis
    def start_redis(self) -> None:
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self._spawn("redis", [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
            "--requirepass", self.redis_password, "--save", "", "--appendonly", "no",
            "--dir", str(redis_dir), "--protected-mode", "yes", "--daemonize", "no",
        ])  # fmt: skip
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.redis_port, password=self.redis_password)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:
                return False

        self._wait("redis", ready, 20)

    # ---------------------------------------------------------------- Rasa side
    def rasa_env(self) -> dict:
        return {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The variables deploy/endpoints.prod.yml reads, as compose/Kubernetes set them.
            "ACTION_SERVER_URL": f"http://127.0.0.1:{self.actions_port}/webhook",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.pg_port),
            "DB_NAME": self.db_name,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis_port),
            "REDIS_PASSWORD": self.redis_password,
            "REDIS_DB": "1",
            "WEB_ORIGINS": "http://127.0.0.1 http://localhost",
            # Loopback only: no TLS here (tests/integration/test_tls.py checks the
            # shipped TLS settings against PostgreSQL and Redis with certificates).
            "DB_SSLMODE": "disable",
            "DB_SSLROOTCERT": "",
            "REDIS_TLS": "",
            "REDIS_CA_CERTS": "",
            "SQL_POOL_SIZE": "10",
            "SQL_MAX_OVERFLOW": "10",
        }

    def start_actions(self) -> None:
        # The project's action server, as the image runs it (loopback here, no CORS);
        # not `rasa run actions`, which binds every interface and allows any origin.
        args = [a.replace("{port}", str(self.actions_port)) for a in ACTION_SERVER]
        self._spawn("actions", args, self.rasa_env())

    def start_rasa(self, index: int) -> None:
        endpoints, credentials = DEPLOY / "endpoints.prod.yml", DEPLOY / "credentials.prod.yml"
        self._spawn(f"rasa{index}", [
            RASA, "run", "--model", str(MODEL), "--endpoints", str(endpoints),
            "--credentials", str(credentials), "-i", "127.0.0.1",
            "--port", str(self.rasa_ports[index]),
            # The HTTP API only for the test's tracker reads: loopback and a random token.
            "--enable-api", "--auth-token", self.token,
        ], self.rasa_env())  # fmt: skip

    def rasa_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.rasa_ports[index]}"

    def rasa_alive(self, index: int) -> bool:
        proc = self.procs.get(f"rasa{index}")
        return bool(proc and proc.popen.poll() is None)

    def wait_app_servers(self) -> None:
        self._wait(
            "actions",
            lambda: http_status(f"http://127.0.0.1:{self.actions_port}/health") == 200,
            90,
        )
        for index in range(self.rasa_servers):
            self._wait(f"rasa{index}", lambda i=index: http_status(self.rasa_url(i)) == 200, 300)
            url = f"{self.rasa_url(index)}/webhooks/health/"
            self._wait(f"rasa{index}", lambda u=url: http_status(u) == 200, 60)

    # -------------------------------------------------------------------- nginx
    def start_nginx(self) -> None:
        nginx_dir = self.workdir / "nginx"
        nginx_dir.mkdir()
        for temp in ("client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
            (nginx_dir / temp).mkdir()
            # Workers run as `nobody` when nginx is started by root.
            os.chmod(nginx_dir / temp, 0o777)
        conf = nginx_dir / "nginx.conf"
        conf.write_text(
            loopback_variant(
                NGINX_CONF.read_text(),
                rasa_ports=self.rasa_ports,
                public_port=self.public_port,
                internal_port=self.internal_port,
                workdir=nginx_dir,
                widget_dirs={
                    "demo": ROOT / "widget" / "demo",
                    "src": ROOT / "widget" / "src",
                    "vendor": WIDGET_VENDOR,
                },
            )
        )
        check = subprocess.run(
            ["nginx", "-t", "-c", str(conf), "-p", str(nginx_dir)], capture_output=True, text=True
        )
        if check.returncode:
            raise FleetError(f"nginx -t failed:\n{check.stderr}")
        self._spawn("nginx", ["nginx", "-c", str(conf), "-p", str(nginx_dir), "-g", "daemon off;"])
        self._wait(
            "nginx",
            lambda: http_status(f"http://127.0.0.1:{self.internal_port}/nginx-health") == 200,
            20,
        )
        self.nginx_dir = nginx_dir

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> Fleet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        return self

    def start(self) -> None:
        self.start_postgres()
        self.start_redis()
        self.start_actions()
        for index in range(self.rasa_servers):
            self.start_rasa(index)
        self.wait_app_servers()
        self.start_nginx()

    def __exit__(self, *exc) -> None:
        self.teardown()

    def teardown(self) -> None:
        for name in ["nginx", *[f"rasa{i}" for i in range(self.rasa_servers)], "actions", "redis"]:
            try:
                self.stop(name)
            except Exception as error:  # noqa: BLE001 - tear down everything we can
                print(f"teardown: {name}: {error}", file=sys.stderr)
        if (self.pg_dir / "data" / "postmaster.pid").exists():
            try:
                self.pg_ctl("stop")
            except Exception as error:  # noqa: BLE001
                print(f"teardown: postgres: {error}", file=sys.stderr)
                self._kill_postmaster()

    def _kill_postmaster(self) -> None:
        pid_file = self.pg_dir / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
