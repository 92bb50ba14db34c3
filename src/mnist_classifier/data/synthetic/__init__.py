"""Synthetic images as a model sees them: non-digits, and digits unlike MNIST's (printed, photographed, varied).

Training shows them to the model, calibration chooses the verdicts' score and thresholds on them, and `evaluate`
and the benchmarks measure the verdicts on them; each use draws its own set, from its own fonts and seeds.
"""

from .cache import POOL_VERSION
from .fonts import HELD_OUT_FONTS, TRAINING_FONTS, VALIDATION_FONTS, matplotlib_fonts
from .marks import MAKERS
from .nondigits import (
    LETTERS,
    LOOK_ALIKES,
    RAW_KINDS,
    blends,
    generated,
    held_out_set,
    letters,
    training_pool,
    validation_set,
)
from .photographed import photograph, photographed
from .printed import font_digits, printed_digits
from .variants import VARIANTS, held_out_printed, variant, variants

__all__ = [
    "HELD_OUT_FONTS",
    "LETTERS",
    "LOOK_ALIKES",
    "MAKERS",
    "POOL_VERSION",
    "RAW_KINDS",
    "TRAINING_FONTS",
    "VALIDATION_FONTS",
    "VARIANTS",
    "blends",
    "font_digits",
    "generated",
    "held_out_printed",
    "held_out_set",
    "letters",
    "matplotlib_fonts",
    "photograph",
    "photographed",
    "printed_digits",
    "training_pool",
    "validation_set",
    "variant",
    "variants",
]
