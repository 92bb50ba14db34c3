"""The `predict` command: the digit (or number) in each image file, as lines of text or as JSON.

Every file gives one result: its reading, the reason it holds no digit (a blank image is "not a digit"), or its
error. The model's reading stands whatever the verdict: a cautious one shows it greyed on a terminal ("not sure:
7?"), plain when piped.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from ..image_files import Reading


def predict(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="[RUN] IMAGES: the model (a run directory, an ensemble folder, a .keras file or bundled:NAME; without"
            " one, the bundled fast CNN), then image files or folders of images (searched recursively).",
            show_default=False,
        ),
    ],
    top_k: Annotated[int, typer.Option("--top-k", help="How many of the most probable classes to show.")] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON array for machines.")] = False,
    save_preprocessed: Annotated[
        Path | None, typer.Option("--save-preprocessed", help="Write the 28x28 images fed to the model here.")
    ] = None,
    multi_digit: Annotated[
        bool, typer.Option("--multi-digit", help="Read a number: one digit per group of ink, left to right.")
    ] = False,
    deskew: Annotated[bool, typer.Option("--deskew", help="Straighten slanted digits before predicting.")] = False,
    prepare: Annotated[
        bool,
        typer.Option("--prepare/--no-prepare", help="MNIST-style preparation, or only resize the image to 28x28."),
    ] = True,
    reject: Annotated[
        bool,
        typer.Option("--reject/--no-reject", help="Verdicts (not a digit, not sure), or every reading a digit."),
    ] = True,
    reject_threshold: Annotated[
        str | None,
        typer.Option(
            "--reject-threshold",
            help="Not a digit below this typicality, 0..1 (share of validation digits as unusual; default: the run's).",
        ),
    ] = None,
    confidence_threshold: Annotated[
        str | None,
        typer.Option(
            "--confidence-threshold", help="Not sure below this calibrated confidence, 0..1 (default: the run's)."
        ),
    ] = None,
    set_coverage: Annotated[
        str | None,
        typer.Option(
            "--set",
            metavar="COVERAGE",
            help="Also give each digit's prediction set: the classes that hold the true one with this probability,"
            " e.g. 0.99 (split conformal).",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="float32, or int8: the model's int8 copy where the CPU has int8 units (VNNI, AMX), else float32.",
        ),
    ] = "float32",
    verbose: Annotated[
        bool,
        typer.Option("--verbose", help="Say on stderr what runs the model (runtime, precision) and how many inputs."),
    ] = False,
) -> None:
    """Read the digit (or, with --multi-digit, the number) in each image, with a verdict: digit, uncertain or
    not_a_digit (a blank image too, with its reason); files that cannot be read are reported and skipped. Without
    a RUN, the bundled fast CNN reads them (`mnist-classifier models`)."""
    from ..errors import ConfigError
    from ..inference import DefaultCalibrationWarning
    from ..predict_files import read_images
    from ..readings import reading_json
    from .models import chosen, label, names_model

    given, images = (paths[0], paths[1:]) if names_model(paths[0]) else (None, paths)
    if not images:
        raise ConfigError(f"give image files or folders after the model {given}")
    model = chosen(given)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DefaultCalibrationWarning)
        found = read_images(
            model,
            images,
            top_k=top_k,
            prepare=prepare,
            multi_digit=multi_digit,
            deskew=deskew,
            reject=reject,
            reject_threshold=reject_threshold,
            confidence_threshold=confidence_threshold,
            save_preprocessed=save_preprocessed,
            set_coverage=set_coverage,
            precision=precision,
        )
    if verbose:
        typer.echo(f"{label(given, model)}: read by {found.runtime}; inputs: {found.inputs:,}", err=True)
    for message in {str(w.message) for w in caught if issubclass(w.category, DefaultCalibrationWarning)}:
        typer.echo(f"note: {message}", err=True)
    for path, reason in found.missing:
        typer.echo(f"error: {path}: {reason}", err=True)
    failures = len(found.missing)
    written = 0
    terminal = Console(soft_wrap=True, highlight=False) if sys.stdout.isatty() and not json_output else None
    coverage = None if set_coverage is None else float(set_coverage)
    for reading in found.readings:
        if reading.error:
            failures += 1
            typer.echo(f"error: {reading.source}: {reading.error}", err=True)
        if json_output:
            # One result per line as it is read, so a large folder streams: readable, and json's C encoder (which
            # indent= would turn off) writes it 5x faster.
            sys.stdout.write(
                ("[\n" if written == 0 else ",\n")
                + json.dumps(reading_json(found.class_names, reading, multi_digit, top_k))
            )
            written += 1
        elif not reading.error:
            segments = reading_line(found.class_names, reading, top_k, multi_digit, coverage)
            if terminal is None:
                sys.stdout.write("".join(text for text, _ in segments) + "\n")
            else:
                terminal.print(Text.assemble(*segments))
    if json_output:
        sys.stdout.write("\n]\n" if written else "[]\n")
    if failures:
        typer.echo(f"error: {failures} of {found.inputs} inputs could not be read", err=True)
        sys.exit(2)


Segment = tuple[str, str]  # text, and its Rich style ("" for none)
GREY = "dim"


def said(verdict: str, reading: str, confidence: float) -> list[Segment]:
    """A reading with its verdict: a digit as it is; an uncertain one or one unlike a digit with the model's reading
    still shown, greyed."""
    if verdict == "uncertain":
        return [("not sure: ", ""), (f"{reading}?  {confidence:.1%}", GREY)]
    if verdict == "not_a_digit":
        return [("not a digit ", ""), (f"(reads like {reading}?)  {confidence:.1%}", GREY)]
    return [(f"{reading}  {confidence:.1%}", "")]


def reading_line(
    class_names: Sequence[str], reading: Reading, top_k: int, multi_digit: bool, coverage: float | None = None
) -> list[Segment]:
    """A file's reading as one line of styled text: the file, the verdict and the reading (or number) with its
    confidence, then the top-k classes (or each digit of the number) and the prediction set when asked; or why it
    holds no digit."""
    from ..readings import members, ranked
    from ..verdicts import overall

    if reading.reason is not None:
        return [(f"{reading.source}  not a digit ({reading.reason})", "")]
    verdicts = reading.verdicts or ["digit"] * len(reading.indices)
    labels = [class_names[i] for i in reading.indices]
    sets = [members(class_names, m) or [] for m in reading.sets] if reading.sets is not None else None
    line: list[Segment] = [(f"{reading.source}  ", "")]
    if multi_digit:
        line += said(overall(verdicts), "".join(labels), reading.confidence)
        line.append(("  digits: ", ""))
        for i, (label, p, v) in enumerate(zip(labels, reading.probabilities, verdicts, strict=True)):
            line += [(" · ", "")] if i else []
            line += said(v, label, float(p.max()))
            line += [(" {" + ", ".join(sets[i]) + "}", "")] if sets is not None else []
        return line
    top = ranked(class_names, reading.probabilities[0], top_k)
    line += said(verdicts[0], labels[0], top[0][1])
    if top_k > 1:
        line.append(("  top-" + str(top_k) + ": " + " · ".join(f"{name} {p:.1%}" for name, p in top), ""))
    if sets is not None and coverage is not None:
        line.append((f"  {coverage * 100:g}% set: " + "{" + ", ".join(sets[0]) + "}", ""))
    return line
