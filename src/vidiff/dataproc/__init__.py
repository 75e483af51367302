"""Video data processing: from a folder of raw videos to scored, filtered, captioned training
clips, as Tora (Zhang et al. 2024, §3.3 "Data Processing and Training Strategy"; SPEC.md §5)
and Open-Sora's tools do it.

Each step reads and writes a table of clips (one row a clip; CSV or Parquet) and is resumable:

========================  ===================================================================
step (module)             what it adds
========================  ===================================================================
``scan`` (:mod:`.scan`)     one row per file: duration, fps, frame count, size, codec, ``ok`` /
                          ``reason`` for broken, empty, audio-only and truncated files
``split`` (:mod:`.split`)   scene cuts (PySceneDetect's AdaptiveDetector): one row per clip with
                          ``start`` / ``end`` seconds and ``start_frame`` / ``end_frame``
``score`` (:mod:`.score`)   ``flow`` (mean optical-flow magnitude), ``camera_motion`` (static /
                          pan / tilt / zoom / dynamic), user scorers
``filter`` (:mod:`.filter`) pandas expressions, camera kinds, Tora's ``1 - flow/100`` rule
``caption``               Moving Shapes ground truth or a user captioner
``trajectories``          sparse point tracks (Tora stage 2), one ``.npz`` a clip
========================  ===================================================================

Per-row work runs on :mod:`.engine` (a local process pool, or Ray Data); :mod:`.runner` keeps a
journal so a killed run resumes, processing each row once. pandas, OpenCV, PySceneDetect and
Ray are imported only when used (``pip install vidiff[data]``; Ray: ``vidiff[ray]``).
"""

__all__: list[str] = []
