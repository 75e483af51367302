"""``vidiff data``: a folder of raw videos -> scored, filtered, captioned training clips.

``vidiff data STEP IN --out OUT [options]``, STEP one of scan (IN: a folder), split, score,
filter, caption, trajectories; ``vidiff data run FOLDER --out DIR`` chains them. Tables are CSV
or Parquet (by suffix); every step resumes from where a killed run stopped. The work is in
:mod:`vidiff.dataproc`; this module only reads the options.
"""

from __future__ import annotations

import argparse
import json
import os

from .args import number, positive
from .base import CLIError, Command

STEPS = ("scan", "split", "score", "filter", "caption", "trajectories", "run")


def _engine_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--workers", type=positive("--workers"),
                   help="processes (local) or CPUs (a Ray instance started here); default: "
                        "this machine's cores")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local process pool, or Ray Data (pip install vidiff[ray])")
    g.add_argument("--ray-address", help="a running Ray cluster (default: start one here)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _split_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("split")
    g.add_argument("--min-duration", type=number("--min-duration", ">= 0"), default=1.0,
                   help="seconds; shorter scenes are dropped (default 1)")
    g.add_argument("--max-duration", type=number("--max-duration", "> 0"), default=10.0,
                   help="seconds; longer scenes are cut into pieces (default 10)")
    g.add_argument("--threshold", type=number("--threshold", "> 0"), default=3.0,
                   help="AdaptiveDetector's adaptive_threshold (default 3)")
    g.add_argument("--min-scene-len", type=positive("--min-scene-len"), default=15,
                   help="frames (default 15)")
    g.add_argument("--cut-dir", help="also write each clip as a file here")


def _flow_opts(g) -> None:
    g.add_argument("--flow-method", choices=("dis", "farneback", "none"), default="dis")
    g.add_argument("--flow-size", type=positive("--flow-size"), default=128,
                   help="short side of the frames flow is computed on (default 128)")


def _score_opts(p: argparse.ArgumentParser, flow: bool = True) -> None:
    g = p.add_argument_group("score")
    if flow:
        _flow_opts(g)
    g.add_argument("--pairs", type=positive("--pairs"), default=8,
                   help="frame pairs a clip (default 8)")
    g.add_argument("--pair-seconds", type=number("--pair-seconds", "> 0"), default=0.25,
                   help="time between the frames of a pair (default 0.25 s)")
    g.add_argument("--static-speed", type=number("--static-speed", ">= 0"), default=0.04,
                   help="camera motion slower than this many short sides of the frame a "
                        "second is none (default 0.04)")
    g.add_argument("--scorer", action="append", metavar="NAME=HOOK",
                   help="a user scorer: module:function, file.py:function or a shell command "
                        "({path} {start} {end} ... are filled in); repeatable")
    g.add_argument("--hook-timeout", type=number("--hook-timeout", "> 0"),
                   help="seconds a scorer or captioner command may take on one clip")


def _filter_opts(p: argparse.ArgumentParser, seed: bool = True) -> None:
    g = p.add_argument_group("filter")
    g.add_argument("--where", help="a pandas expression, e.g. \"height >= 64 and duration >= "
                                   "1 and flow < 20\"")
    g.add_argument("--camera", help="camera-motion kinds to keep, e.g. static,pan")
    g.add_argument("--tora", action="store_true",
                   help="Tora's rule: keep a clip with probability 1 - score / --tora-scale")
    g.add_argument("--tora-scale", type=number("--tora-scale", "> 0"), default=100.0)
    g.add_argument("--tora-column", default="flow_opensora",
                   help="the score the rule reads (default flow_opensora: Open-Sora's scale, "
                        "which Tora's 100 refers to)")
    g.add_argument("--tora-above", type=number("--tora-above", ">= 0"), default=0.0,
                   help="apply the rule only to clips with at least this score")
    g.add_argument("--keep-bad", action="store_true", help="keep rows that are not ok")
    if seed:
        g.add_argument("--seed", type=number("--seed", ">= 0", int), default=0)


def _caption_opts(p: argparse.ArgumentParser, default: str | None = "shapes") -> None:
    g = p.add_argument_group("caption")
    g.add_argument("--captioner", default=default,
                   help="shapes (Moving Shapes ground truth from the clips' sidecars), or a "
                        "hook: module:function, file.py:function or a shell command")
    g.add_argument("--overwrite", action="store_true", help="replace existing captions")


def _traj_opts(p: argparse.ArgumentParser, flow: bool = True) -> None:
    g = p.add_argument_group("trajectories")
    if flow:  # else given with score and filter (run: the .npz files go to DIR/tracks)
        _flow_opts(g)
        g.add_argument("--seed", type=number("--seed", ">= 0", int), default=0)
        g.add_argument("--tracks-dir", help="where the .npz files go (default: next to --out)")
    g.add_argument("--points", type=positive("--points"), default=8,
                   help="tracks a clip at most (default 8)")
    g.add_argument("--grid", type=positive("--grid"), default=8,
                   help="candidate spacing, working pixels (default 8)")
    g.add_argument("--stride", type=positive("--stride"), default=1, help="frame step")
    g.add_argument("--max-frames", type=positive("--max-frames"), help="frames a track")
    g.add_argument("--min-motion", type=number("--min-motion", ">= 0"), default=0.25,
                   help="mean flow a candidate needs, working pixels a frame")


def _split_kw(a) -> dict:
    return dict(min_duration=a.min_duration, max_duration=a.max_duration,
                threshold=a.threshold, min_scene_len=a.min_scene_len, cut_dir=a.cut_dir)


def _score_kw(a) -> dict:
    from ..dataproc.hooks import parse_named

    return dict(method=a.flow_method, flow_size=a.flow_size, num_pairs=a.pairs,
                pair_seconds=a.pair_seconds, static_speed=a.static_speed,
                scorers=tuple(parse_named(a.scorer, "--scorer")), hook_timeout=a.hook_timeout)


def _filter_kw(a) -> dict:
    camera = [c.strip() for c in a.camera.split(",") if c.strip()] if a.camera else None
    return dict(where=a.where, camera=camera, tora=a.tora, tora_scale=a.tora_scale,
                tora_above=a.tora_above, seed=a.seed, keep_bad=a.keep_bad,
                tora_column=a.tora_column)


def _traj_kw(a) -> dict:
    if a.flow_method == "none":
        raise CLIError("trajectories need a flow method: --flow-method dis or farneback")
    return dict(num_points=a.points, grid=a.grid, flow_size=a.flow_size, method=a.flow_method,
                stride=a.stride, max_frames=a.max_frames, min_motion=a.min_motion, seed=a.seed)


class Data(Command):
    name = "data"
    help = "process raw videos into training clips: scan, split, score, filter, caption, " \
           "trajectories, or run them all"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
        s = sub.add_parser("scan", help="one row per video file: duration, fps, size, codec, "
                                        "broken files flagged")
        s.add_argument("input", metavar="FOLDER", help="a folder of videos (or a table)")
        s.add_argument("--verify", action="store_true", help="decode every frame (slow)")
        s.add_argument("--all-files", action="store_true", help="probe every file, not only "
                                                                "video suffixes")
        helps = {"split": "scene cuts (PySceneDetect) -> clips with start/end times",
                 "score": "optical-flow score, camera motion, user scorers",
                 "filter": "keep clips by expression, camera motion and Tora's flow rule",
                 "caption": "captions: Moving Shapes ground truth or a user captioner",
                 "trajectories": "sparse point tracks a clip (Tora stage 2)"}
        parsers = {"scan": s}
        for step, text in helps.items():
            parsers[step] = sub.add_parser(step, help=text)
            parsers[step].add_argument("input", metavar="IN", help="a table (.csv, .parquet)")
        r = parsers["run"] = sub.add_parser("run", help="all steps, FOLDER -> DIR/train.csv")
        r.add_argument("input", metavar="FOLDER")
        for step, q in parsers.items():
            q.add_argument("--out", required=True, help="the output table (run: a folder)")
            if step != "filter":
                _engine_opts(q)
        _split_opts(parsers["split"])
        _score_opts(parsers["score"])
        _filter_opts(parsers["filter"])
        _caption_opts(parsers["caption"])
        parsers["caption"].add_argument("--hook-timeout", type=number("--hook-timeout", "> 0"))
        _traj_opts(parsers["trajectories"])
        _split_opts(r)
        _score_opts(r)
        _filter_opts(r)
        _caption_opts(r, default=None)
        _traj_opts(r, flow=False)
        r.add_argument("--no-trajectories", action="store_true")

    def run(self, a: argparse.Namespace) -> int:
        try:
            return self._run(a)
        except ImportError as e:  # an optional dependency: one line naming the extra
            raise CLIError(str(e)) from e

    def _run(self, a: argparse.Namespace) -> int:
        from ..dataproc import pipeline as pl
        from ..dataproc.engine import Engine
        from ..dataproc.table import check_table_out, is_ok

        try:  # before any work, naming the option
            if a.step == "run":
                if os.path.exists(a.out) and not os.path.isdir(a.out):
                    raise ValueError("is a file; `run` writes its tables into a folder")
            else:
                check_table_out(a.out)
        except ValueError as e:
            raise CLIError(f"--out {a.out}: {str(e).removeprefix(f'{a.out}: ')}") from e
        if a.step == "filter":
            df = pl.filter_step(a.input, a.out, **_filter_kw(a))
            print(json.dumps({"out": a.out, "rows": len(df)}))
            return 0
        with Engine(a.engine, a.workers, not a.no_progress, a.ray_address) as engine:
            if a.step == "run":
                paths = pl.run_pipeline(
                    a.input, a.out, engine, split=_split_kw(a), score=_score_kw(a),
                    filters=_filter_kw(a), captioner=a.captioner,
                    trajectories=False if a.no_trajectories else _traj_kw(a))
                print(json.dumps({k: str(v) for k, v in paths.items()}))
                return 0
            if a.step == "scan":
                df = pl.scan_step(a.input, a.out, engine, a.verify, a.all_files)
            elif a.step == "split":
                df = pl.split_step(a.input, a.out, engine, **_split_kw(a))
            elif a.step == "score":
                df = pl.score_step(a.input, a.out, engine, **_score_kw(a))
            elif a.step == "caption":
                df = pl.caption_step(a.input, a.out, engine, a.captioner, a.overwrite,
                                     a.hook_timeout)
            else:
                df = pl.trajectories_step(a.input, a.out, engine, a.tracks_dir, **_traj_kw(a))
        bad = sum(not is_ok({"ok": v}) for v in df["ok"]) if "ok" in df.columns else 0
        print(json.dumps({"out": a.out, "rows": len(df), "not_ok": bad}))
        return 0
