"""A gateway the load tester starts itself: `dragoman serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from testkit.harness import free_port


class LocalServer:
    """`dragoman serve --loopback-only` in a child process, in the given translation mode."""

    def __init__(
        self,
        mode: str,
        log: Path,
        max_participants: int = 1000,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._env = {
            **os.environ,
            "DRAGOMAN_TRANSLATION_MODE": mode,
            "DRAGOMAN_OPEN_ROOMS": "true",  # a private loopback server for the load test
            "DRAGOMAN_MAX_PARTICIPANTS_PER_ROOM": str(max_participants),
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalServer:
        command = [
            str(Path(sys.executable).with_name("dragoman")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loopback-only",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(timeout_s=180)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited during start-up; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"the server did not start within {timeout_s:.0f} s; see {self.log_path}"
        )

    def signal(self, number: int) -> None:
        assert self._process is not None
        self._process.send_signal(number)

    def wait(self, timeout_s: float) -> int:
        """The exit status, once the server has exited (TimeoutExpired if it does not)."""
        assert self._process is not None
        return self._process.wait(timeout=timeout_s)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
