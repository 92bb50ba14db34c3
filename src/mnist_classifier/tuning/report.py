"""The study's report.html: summary cards, leaderboard, best configuration and Optuna's plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from markupsafe import Markup
from optuna.trial import FrozenTrial, TrialState

from ..report import card, percent, render
from ..utils import write_text

if TYPE_CHECKING:
    from . import TuneSettings


def figures(study: optuna.Study, seed: int) -> list[dict[str, Any]]:
    """Optuna's plots, each a title and a Plotly HTML fragment (Plotly.js is inlined once by the page), or for a
    plot that needs more finished trials, a note saying why."""
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
    out: list[dict[str, Any]] = []
    for title, plot in plots.items():
        try:
            if complete < 2:
                raise ValueError("needs at least two complete trials")
            out.append({"title": title, "plot": Markup(plot().to_html(full_html=False, include_plotlyjs=False))})
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out.append({"title": title, "plot": None, "note": str(e).splitlines()[0]})
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

    counts = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail")}
    best_card = (percent(best.value or 0), f"trial {best.number}") if best else ("—", "no complete trial yet")
    final_card = (percent(final["accuracy"]), "best configuration retrained") if final else ("—", "not retrained")
    tally = f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed"
    shown = rows[:50]
    page = render(
        "tuning.html.j2",
        title=f"Study {s.study}",
        plotlyjs=Markup(get_plotlyjs()),
        model=s.base.model,
        dataset=s.base.dataset,
        space=s.space.name,
        storage=sqlalchemy.engine.make_url(s.storage).render_as_string(hide_password=True),
        summary=[
            card("Best validation accuracy", *best_card, main=True),
            card("Final test accuracy", *final_card),
            card("Trials", str(len(rows)), tally),
            card("Sampler", s.sampler, f"pruner {s.pruner}"),
        ],
        final=bool(final),
        columns=columns,
        rows=[[r[c] for c in columns] for r in shown],
        more=len(rows) - len(shown),
        best_toml=(s.out / "best_config.toml").read_text() if best else "No complete trial yet.",
        plots=figures(study, s.base.seed),
    )
    path = s.out / "report.html"
    write_text(path, page)
    return path
