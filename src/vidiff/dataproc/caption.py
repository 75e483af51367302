"""``caption``: a ``caption`` cell for every clip.

Captioners: ``shapes`` - the exact caption of a Moving Shapes clip, from the file's sidecar
(:mod:`.shapes`); or a user captioner as a hook (:mod:`.hooks`): a Python callable
(``my_pkg.captions:describe``, ``tools/cap.py:describe``) or a shell command (``llava-cli
{path} {start} {end}``), whose text becomes the caption (Tora §3.3 captions with PLLaVA, Open-Sora
with LLaVA; either runs here as a hook). A clip that already has a caption keeps it unless
``overwrite``.
"""

from __future__ import annotations

from .hooks import HookError, run_hook
from .shapes import shapes_caption
from .table import bad_row, is_ok

__all__ = ["BUILTIN_CAPTIONERS", "caption_row"]

BUILTIN_CAPTIONERS = {"shapes": shapes_caption}


def caption_row(row: dict, *, captioner: str = "shapes", overwrite: bool = False,
                hook_timeout: float | None = None) -> list[dict]:
    """The row function of ``caption``: the row with ``caption`` (str) filled by ``captioner``
    (a name in :data:`BUILTIN_CAPTIONERS` or a hook). Rows not ``ok`` pass through; a clip the
    captioner fails on is marked ``ok=False`` (``reason`` ``caption_failed``)."""
    if not is_ok(row):
        return [row]
    old = row.get("caption")
    if not overwrite and isinstance(old, str) and old.strip():
        return [row]
    try:
        fn = BUILTIN_CAPTIONERS.get(captioner)
        text = fn(row) if fn else run_hook(captioner, row, hook_timeout)
    except (HookError, ValueError, OSError) as e:
        return [bad_row(row, "caption", "caption_failed", str(e))]
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    return [{**row, "caption": "" if text is None else str(text).strip()}]
