"""A run's model card: what the model is, what it was trained on, what it is for, how well it reads and where it fails.

Everything on the card comes from the run's own files (config.json, metrics.json, calibration.json), so it says
only what was measured. It is written as model_card.md beside report.html, and is a section of the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import PRESETS, resolve, to_dict
from ..errors import ConfigError
from ..runs import CONFIG, read_json, read_metrics
from ..utils import write_text
from ..verdicts.stored import CALIBRATION
from .pages import render
from .text import format_date, percent

CARD = "model_card.md"
VARIANTS_PAGE = "docs/results/variants.md"
NOT_ON_COMMAND_LINE = {"split_seed"}  # TrainConfig fields `train` takes only from --config
MACHINE = {"threads"}  # settings of the machine, not of the model
LIMITS_SHOWN = 3  # the weakest kinds, classes and pairs a card names


def reproduce(config: dict[str, Any], folder: str) -> str:
    """The command that trains this run again: `train` with the preset closest to its settings and the settings
    that differ from it; `--config FOLDER/config.json` where one of them has no option."""
    if config.get("model") == "ensemble":
        members = " ".join(str(m) for m in config.get("members") or [])
        return f"mnist-classifier ensemble {members}" + (" --tta" if config.get("tta") else "")
    settings = {k: v for k, v in config.items() if k != "meta"}
    best: tuple[int, list[str]] | None = None
    for preset in (None, *PRESETS.get(str(settings.get("model")), {})):
        try:
            base = to_dict(resolve(None, preset, model=settings.get("model")))
        except ConfigError:
            continue
        changed = [k for k, v in settings.items() if k in base and k not in MACHINE and base[k] != v]
        if NOT_ON_COMMAND_LINE & set(changed):
            return f"mnist-classifier train --config {folder}/{CONFIG}"
        words = ["--model", str(settings["model"])] + (["--preset", preset] if preset else [])
        words += ["--seed", str(settings.get("seed"))]
        for key in (k for k in changed if k != "seed"):
            words += flag(key, settings[key])
        if best is None or len(words) < best[0]:
            best = (len(words), words)
    if best is None:
        return f"mnist-classifier train --config {folder}/{CONFIG}"
    return " ".join(["mnist-classifier", "train", *best[1]])


def flag(key: str, value: Any) -> list[str]:
    """A setting as `train` takes it on the command line."""
    name = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [name if value else f"--no-{key.replace('_', '-')}"]
    if isinstance(value, list):
        return [name, ",".join(map(str, value)) or "none"]
    return [name, str(value)]


def architecture(config: dict[str, Any], meta: dict[str, Any]) -> str:
    """The network in one sentence, from its settings."""
    if config.get("model") == "ensemble":
        return f"An ensemble: the mean of the probabilities of {len(config.get('members') or [])} runs."
    units = ", ".join(map(str, config.get("hidden_units") or [])) or "none"
    parts = []
    if config.get("deskew"):
        parts.append("a deskewing layer that straightens each digit first")
    if config.get("model") == "cnn":
        parts.append(
            f"convolution stages of {', '.join(map(str, config.get('filters') or []))} filters"
            f" ({config.get('convs_per_stage')} a stage, {config.get('kernel_size')}x{config.get('kernel_size')}"
            f" first kernel, halved by {config.get('downsample')})"
        )
        parts.append(f"dense layers {units}")
        kind = "A convolutional network"
    else:
        parts.append(f"dense layers {units} ({config.get('activation')}, dropout {config.get('dropout')})")
        kind = "A fully connected network"
    if config.get("batch_norm"):
        parts.append("batch normalisation")
    classes = meta.get("num_classes", "?")
    return (
        f"{kind} (Keras): {'; '.join(parts)}; a softmax over {classes} classes."
        f" {count(meta.get('parameters'))} parameters, {config.get('precision', 'float32')} arithmetic."
    )


def training_data(config: dict[str, Any], meta: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """What the model saw and what it was measured on."""
    if config.get("model") == "ensemble":
        return [f"Its members' data; evaluated on the {metrics.get('dataset')} {metrics.get('split')} split."]
    lines = [
        f"{config.get('dataset')} training set: {count(meta.get('train_size'))} images, {count(meta.get('val_size'))}"
        f" ({share(config.get('validation_fraction', 0))}) held out for validation and calibration (seed"
        f" {config.get('seed')}); {metrics.get('epochs', config.get('epochs'))} epochs."
    ]
    extra = []
    if config.get("printed_digits"):
        extra.append(f"{config['printed_digits']:,} printed digits added")
    if config.get("photographed"):
        extra.append(f"{share(config['photographed'])} of digits seen photographed")
    if config.get("variants"):
        extra.append(f"{share(config['variants'])} in other styles (scans, pens, chalk, ruled paper)")
    if config.get("outliers"):
        extra.append(f"{config['outliers']} non-digits per digit taught to get no confident digit")
    if extra:
        lines.append("Besides the handwritten digits: " + "; ".join(extra) + ".")
    lines.append(f"Measured on the {metrics.get('dataset')} {metrics.get('split')} split ({metrics['n']:,} images).")
    return lines


def count(value: Any) -> str:
    """A count as the card writes it: 57,000; "?" for one the run did not record."""
    return f"{value:,}" if isinstance(value, int) else "?"


def share(fraction: float) -> str:
    """A setting's fraction as a short percentage: 0.25 -> "25%"."""
    return f"{100 * fraction:.3g}%"


def figures(metrics: dict[str, Any]) -> list[list[str]]:
    """The accuracy and verdict figures of the last evaluation."""
    rows = [
        [f"{metrics.get('split', 'test')} accuracy", percent(metrics["accuracy"])],
        ["errors", f"{metrics.get('errors', 0):,} of {metrics['n']:,}"],
    ]
    v = metrics.get("verdicts") or {}
    if "coverage" in v:
        rows += [
            ["answered as a digit", percent(v["coverage"])],
            ["accuracy on the answered", percent(v["accuracy_answered"]) if v.get("accuracy_answered") else "—"],
            ["not sure", percent(v["uncertain"])],
            ["not a digit", percent(v["not_a_digit"])],
            ["calibration error (ECE)", f"{percent(v['ece_after'])} ({percent(v['ece_before'])} before scaling)"],
        ]
    if v.get("auroc_validation_nondigits") is not None:
        rows.append(["AUROC, validation digits vs non-digits", f"{v['auroc_validation_nondigits']:.3f}"])
    if photos := v.get("photographed"):
        rows.append(
            [
                f"{photos['n']:,} digits photographed",
                f"{percent(photos['answered'])} answered, {percent(photos['accuracy'])} right",
            ]
        )
    return rows


def limits(metrics: dict[str, Any], calibration: dict[str, Any]) -> list[str]:
    """Where the model fails, as its own measurements say: its weakest classes and pairs, the digit styles it
    answers least, the non-digits that slip through."""
    per_class = metrics["per_class"]
    weakest = sorted(per_class, key=lambda c: per_class[c]["recall"])[:LIMITS_SHOWN]
    found = ["Weakest classes (recall): " + ", ".join(f"{c} {percent(per_class[c]['recall'])}" for c in weakest) + "."]
    if pairs := metrics.get("most_confused"):
        found.append(
            "Most confused: "
            + ", ".join(f"{p['true']} read as {p['predicted']} ({p['count']})" for p in pairs[:LIMITS_SHOWN])
            + "."
        )
    styles = (calibration.get("figures") or {}).get("validation") or {}
    if styles:
        least = sorted(styles, key=lambda k: styles[k]["answered"])[:LIMITS_SHOWN]
        found.append(
            "Digit styles answered least often (validation digits drawn in each style, measured at calibration): "
            + ", ".join(f"{k} {percent(styles[k]['answered'])}" for k in least)
            + "."
        )
    held_out = {k: s for k, s in ((metrics.get("verdicts") or {}).get("held_out") or {}).items() if "n" in s}
    if held_out:
        slipping = sorted(held_out, key=lambda k: -held_out[k]["answered"])[:LIMITS_SHOWN]
        found.append(
            "Non-digits that slip through (answered as a digit, on sets it never saw): "
            + ", ".join(f"{k} {percent(held_out[k]['answered'])} of {held_out[k]['n']:,}" for k in slipping)
            + "."
        )
    return found


def intended_use(dataset: str) -> str:
    """What the model is for, and what not."""
    if dataset != "mnist":
        return (
            f"Classifying {dataset} images into its classes, for experiments and teaching; the verdicts are"
            " calibrated on its validation split, but were designed for digits."
        )
    return (
        "Reading one handwritten digit (0-9) an image at a time: MNIST-style 28x28 images, or photos and scans of a"
        " digit on plain paper, prepared as predict prepares them. It fits teaching, demonstrations and prototypes."
        " It is not meant for decisions about people (cheques, forms, identity documents) without a person checking"
        " each reading, nor for letters, symbols, or numbers beyond --multi-digit's left-to-right reading of"
        " separate digits. Every reading carries a verdict (digit, uncertain, not_a_digit): act only on digit."
    )


def card_data(run_dir: Path) -> dict[str, Any]:
    """The card's sections, from the run's files."""
    config = read_json(run_dir / CONFIG)
    meta = config.get("meta") or {}
    metrics = read_metrics(run_dir)
    calibration = read_json(run_dir / CALIBRATION, missing_ok=True)
    v = metrics.get("verdicts") or {}
    thresholds = []
    if "reject_threshold" in v:
        thresholds = [
            ["temperature", f"{v['temperature']:.3f}"],
            ["digit-likeness score", str(v["score"])],
            ["not a digit below typicality", f"{v['reject_threshold']:.4g}"],
            ["not sure below calibrated confidence", f"{v['confidence_threshold']:.3f}"],
        ]
    versions = meta.get("versions") or {}
    return {
        "name": run_dir.resolve().name,
        "created": format_date(str(meta.get("created", ""))),
        "versions": ", ".join(f"{k} {versions[k]}" for k in ("keras", "tensorflow") if k in versions),
        "architecture": architecture(config, meta),
        "data": training_data(config, meta, metrics),
        "use": intended_use(str(config.get("dataset", metrics.get("dataset")))),
        "thresholds": thresholds,
        "calibrated": bool(v.get("calibrated")),
        "figures": figures(metrics),
        "limits": limits(metrics, calibration),
        "command": reproduce(config, str(run_dir)),
    }


def card_markdown(run_dir: Path, variants_page: str = VARIANTS_PAGE, name: str | None = None) -> str:
    """The card as Markdown; `variants_page` is where the variant benchmark is (a link on a docs page), `name` the
    model's name on it (default: the run folder's)."""
    data = card_data(run_dir)
    return render("model_card.md.j2", card=data | ({"name": name} if name else {}), variants_page=variants_page)


def write_card(run_dir: Path) -> Path:
    """Write model_card.md into the run folder; return its path."""
    path = run_dir / CARD
    write_text(path, card_markdown(run_dir))
    return path
