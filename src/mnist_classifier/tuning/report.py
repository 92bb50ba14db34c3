"""The study's report.html: summary cards, leaderboard, best configuration and Optuna's plots."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from ..report import CSS, html_table, percent
from ..utils import write_text

if TYPE_CHECKING:
    from . import TuneSettings


def figures(study: optuna.Study, seed: int) -> dict[str, str]:
    """Optuna's plots as HTML fragments (Plotly.js is inlined once by the page); a plot that needs more finished
    trials becomes a note."""
    from optuna import visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    plots: dict[str, Callable[[], Any]] = {
        "Optimisation history": lambda: vis.plot_optimization_history(study),
        "Validation accuracy per epoch (pruned trials stop early)": lambda: vis.plot_intermediate_values(study),
        "Parameter importances (fANOVA)": lambda: vis.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed)
        ),
        "Parallel coordinates": lambda: vis.plot_parallel_coordinate(study),
    }
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out = {}
    for title, plot in plots.items():
        try:
            if complete < 2:
                raise ValueError("needs at least two complete trials")
            out[title] = plot().to_html(full_html=False, include_plotlyjs=False)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out[title] = f"<p>Not drawn: {html.escape(str(e).splitlines()[0])}.</p>"
    return out


def write_tuning_report(
    study: optuna.Study,
    s: TuneSettings,
    rows: list[dict[str, Any]],
    columns: list[str],
    best: FrozenTrial | None,
    final: dict[str, Any] | None,
) -> Path:
    """report.html: summary, leaderboard, best configuration, Optuna's plots and a link to the final run's report;
    self-contained (Plotly.js inline), so it opens offline."""
    from plotly.offline import get_plotlyjs

    e = html.escape
    counts = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail")}
    best_card = (percent(best.value or 0), f"trial {best.number}") if best else ("—", "no complete trial yet")
    final_card = (percent(final["accuracy"]), "best configuration retrained") if final else ("—", "not retrained")
    tally = f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed"
    cards = [
        ("main", "Best validation accuracy", *best_card),
        ("", "Final test accuracy", *final_card),
        ("", "Trials", str(len(rows)), tally),
        ("", "Sampler", s.sampler, f"pruner {s.pruner}"),
    ]
    card_html = "".join(
        f'<div class="card {c}"><div class="label">{e(k)}</div><div class="value">{e(v)}</div>'
        f'<div class="sub">{e(sub)}</div></div>'
        for c, k, v, sub in cards
    )
    shown = rows[:50]
    board = html_table(columns, [[e(str(r[c])) for c in columns] for r in shown])
    more = f"<p>{len(rows) - len(shown)} more trials in leaderboard.csv.</p>" if len(rows) > len(shown) else ""
    plots = "".join(
        f"<h2>{e(title)}</h2><figure>{body}</figure>" for title, body in figures(study, s.base.seed).items()
    )
    link = '<p><a href="final/report.html">The final run\'s report</a> (test set).</p>' if final else ""
    best_toml = (s.out / "best_config.toml").read_text() if best else "No complete trial yet."
    storage = sqlalchemy.engine.make_url(s.storage).render_as_string(hide_password=True)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Study {e(s.study)}</title><style>{CSS}pre{{background:#fff;padding:16px;border-radius:12px}}</style>
<script>{get_plotlyjs()}</script></head><body><main>
<header><h1>Study {e(s.study)}</h1><p>{e(s.base.model)} on {e(s.base.dataset)} · space {e(s.space.name)} ·
storage {e(storage)} · objective: best validation accuracy</p></header>
<section class="cards">{card_html}</section>{link}
<h2>Leaderboard</h2>{board}{more}
<h2>Best configuration</h2><pre>{e(best_toml)}</pre>
{plots}
</main></body></html>
"""
    path = s.out / "report.html"
    write_text(path, page)
    return path
