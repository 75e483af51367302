"""``--engine ray``: on a local Ray instance (2 CPUs, started here) every step writes exactly
the table - and the trajectory files - of the local process pool."""

import numpy as np
import pandas as pd
import pytest
import ray

from vidiff.data.moving_shapes import MovingShapesConfig
from vidiff.data.video_io import write_video
from vidiff.dataproc.engine import Engine
from vidiff.dataproc.pipeline import run_pipeline
from test_dataproc_table import shapes_file, textured_segments


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own, about its settings
def test_ray_engine_gives_exactly_the_local_table(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    write_video(d / "joined.mp4", textured_segments([20, 18], size=48), fps=10)
    cfg = MovingShapesConfig(size=48, num_frames=12, camera_pan_prob=0.5)
    for i in range(3):
        shapes_file(d / f"shapes_{i}.mkv", cfg, i)
    (d / "broken.mp4").write_bytes(b"\x00" * 100)
    options = dict(split={"min_duration": 0.5}, trajectories={"num_points": 4})
    with Engine("local", 2, progress=False) as e:
        local = run_pipeline(d, tmp_path / "local", e, **options)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with Engine("ray", progress=False) as e:
            remote = run_pipeline(d, tmp_path / "ray", e, **options)
    finally:
        ray.shutdown()
    for step in local:
        a, b = pd.read_csv(local[step]), pd.read_csv(remote[step])
        for col in ("trajectory",):  # the same file names, in each run's own folder
            if col in a:
                a[col], b[col] = a[col].str.replace(str(tmp_path / "local"), ""), \
                    b[col].str.replace(str(tmp_path / "ray"), "")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    table = pd.read_csv(local["table"])  # the broken file is flagged by scan, then filtered
    assert len(table) == 5 and table["num_tracks"].gt(0).all()
    for name in table["trajectory"]:
        x = np.load(name)
        y = np.load(name.replace(str(tmp_path / "local"), str(tmp_path / "ray")))
        assert all(np.array_equal(x[k], y[k]) for k in x.files)
