"""Throwaway PostgreSQL and Redis servers started from installed binaries.

Used by the test fixtures, the benchmarks and docs/screenshot.py. PostgreSQL's
initdb refuses to run as root, so as root the server runs as the `postgres` user
via `runuser`. Also where Debian's Chromium is and how it is launched headless,
shared by the browser tests and the screenshot script.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class ServerUnavailable(RuntimeError):
    """The binaries for a server are not installed here."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, found)
    if not candidates:
        raise ServerUnavailable("PostgreSQL binaries (pg_ctl, initdb) are not installed")
    return Path(candidates[0]).parent


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresServer:
    port: int
    data_dir: Path
    bin_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_postgres_user(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ]
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_postgres(max_connections: int = 200) -> PostgresServer:
    """initdb and start a PostgreSQL server on a free loopback port (fsync off: it is throwaway)."""
    bin_dir = postgres_bin_dir()
    data_dir = Path(tempfile.mkdtemp(prefix="pulseboard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ]
        ),
        capture_output=True,
        check=True,
    )
    options = (
        f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={max_connections}"
    )
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir / "data"),
                "-l",
                str(data_dir / "log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        ),
        capture_output=True,
        check=True,
    )
    return PostgresServer(port=port, data_dir=data_dir, bin_dir=bin_dir)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        """The same server through its Unix socket, as redis-py and RQ write it."""
        return f"unix://{_redis_socket(self.port)}?db=0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start the server again on its port after `stop` (an outage ending): empty, as new."""
        self.process = _spawn_redis(self.port)


def _redis_socket(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"pulseboard-test-redis-{port}.sock"


def _spawn_redis(port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed")
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--unixsocket", str(_redis_socket(port)), "--unixsocketperm", "700",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start within 10 s")


def start_redis(port: int | None = None) -> RedisServer:
    """Start a Redis server with no persistence on `port` (or a free loopback port)."""
    port = port or free_port()
    return RedisServer(port=port, process=_spawn_redis(port))
