"""A step killed part-way resumes: the rerun processes only the rows the killed run did not
finish, so every row is processed to the end exactly once and lands once in the table."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from vidiff.cli import main
from vidiff.dataproc.table import write_table

ROOT = Path(__file__).resolve().parents[1]

HOOK = """
import os, signal
def count(row):
    n = len(open(os.environ['LOG']).read().splitlines()) if os.path.exists(os.environ['LOG']) else 0
    if os.environ.get('KILL_AT') and n == int(os.environ['KILL_AT']):
        os.kill(os.getpid(), signal.SIGKILL)   # dies on this row, before finishing it
    with open(os.environ['LOG'], 'a') as f:
        f.write(row['path'] + '\\n')
    return len(row['path'])
"""


def _args(tmp_path):
    return ["data", "score", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv"),
            "--workers", "1", "--flow-method", "none", "--no-progress",
            "--scorer", f"n={tmp_path / 'hook.py'}:count"]


def test_resume_after_a_kill_processes_each_row_once(tmp_path, monkeypatch):
    paths = [f"/clips/{i:02d}.mp4" for i in range(12)]
    write_table(pd.DataFrame({"path": paths, "num_frames": 8, "ok": True}),
                tmp_path / "in.csv")
    (tmp_path / "hook.py").write_text(HOOK)
    monkeypatch.setenv("LOG", str(tmp_path / "log.txt"))
    killed = subprocess.run([sys.executable, "-m", "vidiff.cli", *_args(tmp_path)],
                            env={**os.environ, "KILL_AT": "5"}, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # SIGKILLed on its sixth row
    assert killed.returncode == -9 and not (tmp_path / "out.csv").exists()
    assert (tmp_path / "log.txt").read_text().splitlines() == paths[:5]
    assert main(_args(tmp_path)) == 0  # the rerun
    log = (tmp_path / "log.txt").read_text().splitlines()
    assert log[5:] == paths[5:]  # skipped the five rows the killed run had finished
    assert sorted(log) == paths  # so each row was processed to the end exactly once
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["path"].tolist() == paths and out["n"].tolist() == [len(p) for p in paths]
    assert main(_args(tmp_path)) == 0  # all journaled: nothing runs, the same table
    assert len((tmp_path / "log.txt").read_text().splitlines()) == 12
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), out)


def crash_on_bad(row):
    """A row function whose worker process dies on ``bad`` rows (as a segfaulting decoder)."""
    if "bad" in row["path"]:
        os._exit(3)
    return [{**row, "n": len(row["path"])}]


def test_a_row_that_kills_its_worker_is_marked_and_the_others_finish(tmp_path):
    from vidiff.dataproc.engine import Engine

    paths = [f"/clips/{'bad' if i == 4 else 'ok'}{i:02d}.mp4" for i in range(10)]
    with Engine("local", 2, progress=False) as e:
        got = dict(e.map(crash_on_bad, list(enumerate({"path": p} for p in paths))))
        again = dict(e.map(crash_on_bad, [(0, {"path": paths[0]}), (1, {"path": paths[1]})]))
    assert sorted(got) == list(range(10)) and len(again) == 2  # the pool was restarted
    assert got[4][0]["ok"] is False and got[4][0]["reason"] == "worker_crashed"
    assert all(got[k] == [{"path": paths[k], "n": len(paths[k])}] for k in got if k != 4)
