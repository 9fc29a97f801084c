"""Faults a long evaluation meets: SIGKILL mid-run, a read-only output folder, a full disk.

* ``mirage reproduce --quick`` killed with SIGKILL while its ladder trains, then
  rerun: every table equals an uninterrupted run's, byte for byte, but for the
  wall-clock column of the induction run's checkpoint log (slow: two
  reproductions, about 5 minutes on one thread). ``tests/test_reproduce.py``
  covers the stage cache in process and ``tests/test_ladder_train.py`` a SIGKILL
  of ``mirage ladder train``; this is the whole command, killed for real.
* ``mirage score``, ``mirage theory`` and ``mirage ladder eval`` writing into a
  read-only folder, and onto a "full disk" (``RLIMIT_FSIZE`` in the child with
  SIGXFSZ ignored, so a write past the limit fails with EFBIG): one clear error
  line naming the cause, exit 2, inputs byte-identical, no output file and no
  temporary file. ``ladder eval`` may keep its hidden ``.NAME.parts`` folder:
  that is its resume record (complete parts only), and a rerun with room
  gives the same table as a clean run.
* ``mirage ladder eval`` killed with SIGKILL once a part exists, then rerun:
  the table equals an uninterrupted run's (``assert_frame_equal`` and equal
  parquet bytes of the sorted table).

A read-only folder is made with ``chmod`` for an ordinary user; for root
(whom permissions do not stop) with a read-only bind mount in a private mount
namespace (``unshare``), else ``chattr +i``, else the test is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from miragelab.tables import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_FILE = Path(__file__).parent / "fixtures" / "bad" / "unknown_metric.jsonl"  # a valid one
CAUSE = re.compile(
    r"Read-only file system|Permission denied|Operation not permitted|"
    r"File too large|No space left on device"
)
#: a "full disk": files may grow to this many bytes, every output is larger
DISK_LIMIT = 4096


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # one thread: bitwise-equal training and decoding across runs, and room for others
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _mirage(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "miragelab", *map(str, args)]


def _hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (files or folders), by path."""
    out = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------- a tiny ladder


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny models on 3-digit addition (a few seconds on one thread)."""
    import torch

    from miragelab.ladder.presets import Preset, SizeSpec
    from miragelab.ladder.train import train_ladder

    folder = tmp_path_factory.mktemp("ladder") / "add3"
    preset = Preset(
        name="faults",
        sizes=(SizeSpec(1, 2, 8, 3e-3), SizeSpec(1, 2, 16, 3e-3), SizeSpec(2, 2, 16, 3e-3)),
        steps=12,
        batch_size=16,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_ladder(folder, "add3", preset, seed=3)
    finally:
        torch.set_num_threads(threads)
    return folder


def _parts_dir(out: Path) -> Path:
    """Where ``ladder eval --out out`` keeps its parts until the table is written."""
    from miragelab.runners.units import work_dir_for

    folder, temporary = work_dir_for(out)
    assert temporary
    return folder


def _eval_args(ladder: Path, out: Path, n_test: int = 64) -> list[str]:
    return _mirage(
        "ladder", "eval", ladder, "--out", out, "--n-test", str(n_test), "--threads", "1"
    )


# --------------------------------------------------------------------------- faults


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[list[str]]:
    """Make ``folder`` read-only for a child; yields the prefix to run the child with."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield []
        finally:
            folder.chmod(0o755)
        return
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    prefix = ["unshare", "--mount", "sh", "-c", script, str(folder)]
    if shutil.which("unshare"):
        probe = subprocess.run(prefix + ["true"], capture_output=True)
        if probe.returncode == 0:
            yield prefix
            return
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0:
        try:
            yield []
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        return
    pytest.skip("cannot make a folder read-only for root here (no unshare, no chattr)")


def _small_disk() -> None:
    """In the child: files cannot grow past DISK_LIMIT bytes (EFBIG, not a signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_LIMIT, DISK_LIMIT))


def _check_refused(
    result: subprocess.CompletedProcess[str], progress_lines: tuple[str, ...] = ()
) -> str:
    """One clear error line naming the cause, exit 2, no traceback."""
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert result.returncode == 2, both
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    others = [line for line in lines[:-1] if not line.startswith(progress_lines or ("\0",))]
    assert others == [], f"unexpected stderr lines: {others}"
    assert CAUSE.search(errors[0]), errors[0]
    return errors[0]


def _check_no_partial_output(out: Path, resume_folder: str | None = None) -> None:
    """No output file and no temporary file; only complete parts in the resume folder."""
    for path in _files(out):
        rel = path.relative_to(out)
        assert resume_folder is not None and rel.parts[0] == resume_folder, f"left behind: {rel}"
        assert not path.name.endswith(".tmp"), f"temporary file left: {rel}"
        if path.suffix == ".parquet":
            pq.read_table(path)  # complete, or this raises


FaultRun = Callable[[list[str], Path], subprocess.CompletedProcess[str]]


def _run_read_only(args: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    with read_only(out) as prefix:
        return subprocess.run(
            prefix + args, capture_output=True, text=True, env=_env(), timeout=300
        )


def _run_small_disk(args: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        args, capture_output=True, text=True, env=_env(), timeout=300, preexec_fn=_small_disk
    )


FAULTS = {"read_only": _run_read_only, "disk_full": _run_small_disk}


@pytest.fixture(scope="module", autouse=True)
def _warm_caches() -> None:
    """Font and bytecode caches exist before a child runs with no room to write them."""
    subprocess.run(
        [sys.executable, "-c", "import matplotlib.pyplot, miragelab.cli"],
        env=_env(),
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_score_fault(fault: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = _hashes(SAMPLES_FILE)
    args = _mirage("score", SAMPLES_FILE, "--out", out / "scores.parquet")
    _check_refused(FAULTS[fault](args, out))
    assert _hashes(SAMPLES_FILE) == before
    _check_no_partial_output(out)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_theory_fault(fault: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = _mirage("theory", "--out", out / "theory", "--points", "50")
    _check_refused(FAULTS[fault](args, out))
    _check_no_partial_output(out)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_ladder_eval_fault(fault: str, ladder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = _hashes(ladder)
    args = _eval_args(ladder, out / "samples.parquet")
    _check_refused(FAULTS[fault](args, out), progress_lines=("decoding",))
    assert _hashes(ladder) == before
    _check_no_partial_output(out, resume_folder=_parts_dir(out / "samples.parquet").name)
    # with room again, the same command finishes and gives a clean run's table
    done = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    clean = tmp_path / "clean" / "samples.parquet"
    subprocess.run(_eval_args(ladder, clean), env=_env(), check=True, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "samples.parquet"), pd.read_parquet(clean))
    assert [p.name for p in out.iterdir()] == ["samples.parquet"]


# --------------------------------------------------------------------------- SIGKILL


def _kill_when(
    args: list[str], ready: Callable[[], bool], timeout: float = 900
) -> subprocess.Popen[bytes]:
    """Start ``args``; SIGKILL it as soon as ``ready()``; fail if it finishes first."""
    child = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert child.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return child


def _sorted_parquet_bytes(frame: pd.DataFrame) -> bytes:
    key = [c for c in SAMPLES.key if c in frame.columns and frame[c].notna().any()]
    ordered = frame.sort_values(key, kind="stable", ignore_index=True)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(ordered, preserve_index=False), buffer)
    return buffer.getvalue()


def test_sigkill_during_ladder_eval_resumes_to_the_same_table(ladder: Path, tmp_path: Path) -> None:
    """Killed once a part is on disk; the rerun finishes the other units only."""
    from miragelab.ladder.evaluate import SHARD_SIZE

    n_test = 4 * SHARD_SIZE  # 4 units per model, 12 in all
    whole = tmp_path / "whole" / "samples.parquet"
    subprocess.run(_eval_args(ladder, whole, n_test), env=_env(), check=True, capture_output=True)
    out = tmp_path / "killed" / "samples.parquet"
    parts = _parts_dir(out)
    _kill_when(_eval_args(ladder, out, n_test), lambda: any(parts.rglob("part-*.parquet")))
    assert not out.exists()
    finished = len(list(parts.rglob("part-*.parquet")))
    assert 1 <= finished < 12
    rerun = subprocess.run(
        _eval_args(ladder, out, n_test), env=_env(), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    got, want = pd.read_parquet(out), pd.read_parquet(whole)
    pd.testing.assert_frame_equal(got, want)
    assert _sorted_parquet_bytes(got) == _sorted_parquet_bytes(want)
    assert not parts.exists()  # the resume record goes once the table is written


def _tables(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".csv", ".parquet") and p.is_file()
    }


@pytest.mark.slow
def test_sigkill_during_reproduce_resumes_to_the_same_tables(tmp_path: Path) -> None:
    """``mirage reproduce --quick`` killed while its ladder trains (one model done)."""
    whole = tmp_path / "whole"
    subprocess.run(
        _mirage("reproduce", "--quick", "--out", whole),
        env=_env(),
        check=True,
        capture_output=True,
        timeout=3600,
    )
    out = tmp_path / "killed"
    manifest = out / "ladder" / "models-cpu-quick-seed0" / "ladder.json"

    def one_model_trained() -> bool:
        try:
            return '"model"' in manifest.read_text(encoding="utf-8")
        except OSError:
            return False

    _kill_when(_mirage("reproduce", "--quick", "--out", out), one_model_trained, timeout=3600)
    assert not (out / "ladder" / "stage.json").exists()
    rerun = subprocess.run(
        _mirage("reproduce", "--quick", "--out", out),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # the stage lines are progress: stdout, so that stderr holds only an error
    assert re.search(r"theory\s+cached", rerun.stdout), rerun.stdout[-2000:]
    got, want = _tables(out), _tables(whole)
    assert sorted(got) == sorted(want)
    assert len(want) >= 20
    different = [name for name in want if got[name] != want[name]]
    # the only column allowed to differ is a wall clock (the induction run logs the
    # seconds at each checkpoint); every other value must be identical
    for name in different:
        ours, theirs = _read(out / name), _read(whole / name)
        assert WALL_CLOCK in theirs.columns, f"{name} differs"
        pd.testing.assert_frame_equal(
            ours.drop(columns=WALL_CLOCK), theirs.drop(columns=WALL_CLOCK), check_exact=True
        )


WALL_CLOCK = "seconds"


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
