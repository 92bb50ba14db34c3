"""The fonts each synthetic set draws its characters in: Matplotlib's own, so installed wherever the package is.

Each set keeps fonts of its own, so that a set is never judged on a hand it was fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

VALIDATION_FONTS = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSerif",
    "DejaVuSerif-Italic",
    "DejaVuSansMono",
    "STIXGeneral",
    "STIXGeneralItalic",
    "cmr10",
    "cmss10",
)
TRAINING_FONTS = (
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono-Bold",
    "DejaVuSansMono-Oblique",
    "DejaVuSerif-Bold",
    "DejaVuSerif-BoldItalic",
    "STIXGeneralBol",
    "STIXGeneralBolIta",
    "cmb10",
    "cmti10",
    "cmtt10",
)
HELD_OUT_FONTS = ("cmmi10",)  # Computer Modern math italic: a-z and A-Z in a hand seen nowhere else


def matplotlib_fonts(names: Sequence[str] = VALIDATION_FONTS) -> list[Path]:
    """Fonts shipped with Matplotlib (a dependency), so always installed: by default the validation set's."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [folder / f"{name}.ttf" for name in names if (folder / f"{name}.ttf").is_file()]
