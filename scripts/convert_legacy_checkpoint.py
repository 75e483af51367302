"""Convert a pipeline folder written before the component manifest (vidiff <= the architecture
issue) in place: add ``model_index.json`` (and the key pipeline's), and record each denoiser's
sample shape (``sample_size``, ``num_frames``, in its own space) in its ``config.json``, taken
from the recipe's data section as the old loader did. Weights are not rewritten, so sampling is
bit-identical before and after.

    python scripts/convert_legacy_checkpoint.py src/vidiff/assets/vdm_tiny src/vidiff/assets/lvdm_tiny
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidiff import __version__
from vidiff.pipelines import MODEL_INDEX, DiffusionPipeline, VideoDiffusionPipeline


def convert(pipe: VideoDiffusionPipeline, d: Path, parent: dict | None = None) -> None:
    pipe.model.sample_shape = pipe.trained_shape()
    pipe.model.save_config(d)
    index = {"_class_name": type(pipe).__name__, "_vidiff_version": __version__,
             "denoiser": ["model", "."]}
    for name, comp in pipe.components.items():
        if comp is None or name == "denoiser":
            continue
        if parent is not None and parent.get(name) is comp:
            index[name] = ["shared", name]
        elif isinstance(comp, DiffusionPipeline):
            convert(comp, d / name, parent=pipe.components)
            index[name] = ["pipeline", name]
        else:
            index[name] = ["model", name]
    (d / MODEL_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    print(f"{d}: {index}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+")
    for folder in p.parse_args().folders:
        d = Path(folder)
        if (d / MODEL_INDEX).is_file():
            print(f"{d}: already has {MODEL_INDEX}")
            continue
        convert(VideoDiffusionPipeline.from_pretrained(d), d)


if __name__ == "__main__":
    main()
