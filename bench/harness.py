"""What every benchmark shares: a sandbox in its own process, data, a timed importer run, a bare
aiohttp loop to compare against, and the row each benchmark adds to the table.

Everything runs against the importer of the tree this package sits in (``PYTHONPATH`` is set to
it), so ``cp -r`` the repository, change the copy and run ``python -m bench`` there to measure a
change against the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

#: The repository whose importer is measured: the one holding this package.
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
if str(ROOT) not in sys.path:  # build_journal and friends import this tree's importer
    sys.path.insert(0, str(ROOT))
#: The key the sandboxes are started with and the importer sends.
KEY = "bench-key"
#: Entitlement columns, one filled per row, in turn.
KINDS = ("video_id", "playlist_id", "plan_id", "pass_plan_id")
#: Dates far ahead, so no row expires whatever day the benchmark runs.
DATES = ("2099-12-31", "2098-06-30", "2097-01-15", "2096-11-01")
GNU_TIME = "/usr/bin/time"


@dataclass
class Row:
    """One line of the results table; ``ok`` None means the figure is reported, not judged."""

    benchmark: str
    figure: str
    goal: str
    ok: bool | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else ("pass" if self.ok else "FAIL")


def env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this tree's importer first, the bench key set."""
    base = dict(os.environ)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    # Both spellings: the sandbox command reads its own variable in newer trees.
    base.update(ZYPE_API_KEY=KEY, ZYPE_SANDBOX_KEY=KEY, PYTHONUNBUFFERED="1")
    base.update(extra)
    return base


# --- data ----------------------------------------------------------------------------------------


def write_csv(
    path: Path,
    n: int,
    *,
    tag: str = "B",
    seed: int = 7,
    code: Callable[[int], str] | None = None,
) -> Path:
    """A clean spreadsheet of *n* rows: unique codes (``<tag>00000001``, or ``code(i)``),
    far-off dates, one of the four entitlement columns filled in turn."""
    rng = random.Random(seed)
    ids = [f"{rng.getrandbits(96):024x}" for _ in range(997)]
    width = len(KINDS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("code", "expiration_date", *KINDS))
        blank = [""] * width
        for i in range(n):
            cells = blank.copy()
            cells[i % width] = ids[i % len(ids)]
            name = code(i) if code is not None else f"{tag}{i:08d}"
            writer.writerow((name, DATES[i % len(DATES)], *cells))
    return path


def read_payloads(path: Path) -> list[dict[str, Any]]:
    """The ``POST`` bodies for a file written by :func:`write_csv`."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {"redemption_code": {k: v for k, v in row.items() if v}}
            for row in csv.DictReader(handle)
        ]


# --- the sandbox ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandbox(faults: str | None = None, others: int = 0) -> Iterator[str]:
    """A fresh ``zype-import sandbox`` process on a free loopback port; yields its base URL.

    `others`: codes of other people it holds from the start.
    """
    for _ in range(5):
        port = free_port()
        command = [PYTHON, "-m", "importer", "sandbox", "--port", str(port)]
        if faults:
            command += ["--faults", faults]
        if others:
            command += ["--others", str(others)]
        proc = subprocess.Popen(
            command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
        )
        try:
            line = _first_line(proc, timeout=30.0)
            found = re.search(r"https?://\S+", line)
            if found is None:
                continue  # the port was taken meanwhile: try another
            yield found.group()
            return
        finally:
            _stop(proc)
    raise RuntimeError("the sandbox did not start (five tries)")


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return ""
    return proc.stdout.readline().decode("utf-8", "replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


# --- the importer --------------------------------------------------------------------------------


@dataclass
class Run:
    """A finished ``zype-import`` process: exit code, wall and CPU time, summary, peak RSS."""

    exit_code: int
    wall: float
    cpu: float
    summary: dict[str, Any]
    peak_rss_mb: float | None
    stderr: str

    @property
    def created(self) -> int:
        return int(self.summary.get("counts", {}).get("created", 0))

    def check(self, *allowed: int) -> Run:
        if self.exit_code not in (allowed or (0,)):
            tail = "\n".join(self.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"zype-import exited {self.exit_code}:\n{tail}")
        return self


def importer(command: str, input_path: Path, workdir: Path, *options: str) -> Run:
    """Run ``python -m importer COMMAND INPUT`` to completion, timing the whole process.

    Results, journal and summary go to *workdir*. Peak RSS comes from ``/usr/bin/time -v`` when
    present, else from ``wait4`` on the child itself.
    """
    summary = workdir / f"{input_path.stem}.{command}.summary.json"
    summary.unlink(missing_ok=True)
    args = [
        command,
        str(input_path),
        "--results",
        str(workdir / f"{input_path.stem}.results.csv"),
        "--journal",
        str(workdir / f"{input_path.stem}.journal"),
        "--summary",
        str(summary),
        "--no-progress",
        "-q",
        *options,
    ]
    base = [PYTHON, "-m", "importer", *args]
    timing = workdir / "time.txt"
    use_time = Path(GNU_TIME).exists()
    prefix = [GNU_TIME, "-v", "-o", str(timing)] if use_time else []
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*prefix, *base], env=env(), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    rss: float | None = usage.ru_maxrss / 1024  # kB on Linux
    if use_time:
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text())
        rss = int(found.group(1)) / 1024 if found else None
        timing.unlink()
    data = json.loads(summary.read_text()) if summary.exists() else {}
    cpu = usage.ru_utime + usage.ru_stime
    return Run(proc.returncode, wall, cpu, data, rss, err.decode("utf-8", "replace"))


def clean(workdir: Path, stem: str) -> None:
    """Forget an earlier run's journal and results, so the next run starts from nothing."""
    for path in workdir.glob(f"{stem}.*"):
        if path.suffix != ".csv" or path.name.endswith(".results.csv"):
            path.unlink()


def import_unlimited(
    data: Path, workdir: Path, rows: int, concurrency: int, faults: str | None = None
) -> Run:
    """A fresh run of every row of *data* against a fresh sandbox, with no rate limit to speak of.

    Raises unless the run exits 0 having created all *rows* codes.
    """
    clean(workdir, data.stem)
    with sandbox(faults) as url:
        result = importer(
            "run",
            data,
            workdir,
            "--api-url",
            url,
            "--rate",
            "1000000",
            "--concurrency",
            str(concurrency),
        ).check()
    if result.created != rows:
        raise RuntimeError(f"importer: {result.summary}")
    return result


# --- the floor: a bare aiohttp loop --------------------------------------------------------------


async def _bare(
    url: str, payloads: Sequence[dict[str, Any]], concurrency: int
) -> tuple[int, float]:
    endpoint = f"{url}/redemption_codes"
    params = {"api_key": KEY}
    headers = {"Content-Type": "application/json"}
    created = 0
    rows = iter(payloads)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal created
            for payload in rows:
                body = json.dumps(payload).encode()
                async with session.post(endpoint, params=params, data=body, headers=headers) as r:
                    await r.read()
                    created += r.status == 201

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Bare(created, elapsed, cpu)


@dataclass
class Bare:
    """What the bare loop did: codes created, seconds from first request to last answer, CPU."""

    created: int
    wall: float
    cpu: float


def bare_loop(url: str, payloads: Sequence[dict[str, Any]], concurrency: int) -> Bare:
    """POST every payload with *concurrency* workers on one session; raise unless all created."""
    done = asyncio.run(_bare(url, payloads, concurrency))
    if done.created != len(payloads):
        raise RuntimeError(f"bare loop created {done.created} of {len(payloads)}")
    return done


# --- the machine ---------------------------------------------------------------------------------


def machine() -> str:
    """One line: cores, CPU model, memory, Python, load when measured."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    load = ", load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    py = ".".join(map(str, sys.version_info[:3]))
    return f"{os.cpu_count()} cores ({model}){memory}, Python {py}{load}"
