"""The model-patch study's report: `summary.md` and `ap_vs_patch_size.png`.

Built from the finished rows of `univision.studies.model_patches`
(`runs.csv`, `base_curve.csv`). The summary states:

- whether the study is partial (planned runs without a row) and which
  (task, method) results rest on fewer than `MIN_SEEDS` (3) seeds;
- the base: its test AP on its own task and, if it trained here, its test AP
  by step and whether its last chunk gained less than `LEVELLED_GAIN` (0.01),
  i.e. whether it levelled off;
- issue #19's targets per learned patch ('spot@<lambda>'), each marked met,
  missed, not measured, or not yet assessed while a planned run it rests on
  (the learned patch's or full fine-tuning's, any task, any seed) has no
  row: its mean AP reaches `TARGET_FRACTION` (0.95) x full
  fine-tuning's on every task at <= `TARGET_PERCENT` (15)% of the parameters
  on average; its size (% parameters) ranks with task difficulty (base AP -
  full fine-tune AP) at Spearman rho >= `TARGET_RANK` (0.8), and, without a
  target, with the base's feature gap (1 - predictor patch AP / full AP);
- tasks recorded outside the targets (`record_only`: a task that cannot
  rank methods, e.g. one whose full fine-tune does not generalise), named
  under the targets and marked in the tables; the targets are computed
  over the other tasks;
- a table of each learned patch's AP / full AP and size per task, then per
  task every method's mean ± sample std over seeds of AP and AP50, its
  share of the parameters, patch file bytes and gated-on layers.

The learned patch is the study's patch selection: the old rule (the
smallest fixed patch reaching 0.9x the full AP, `selection.csv`) is gone.
The plot shows, per task, mean test AP against % parameters (log), with
error bars over seeds: fixed patches as a line, each learned patch and full
fine-tuning as markers.
"""
import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from univision.studies import model_patches_rows as rows

# How the summary marks a `record_only` task.
OUTSIDE = 'outside the targets'
# Issue #19's targets: the learned patch's mean AP >= TARGET_FRACTION x full
# fine-tuning's on every task, at <= TARGET_PERCENT% of the parameters on
# average; its size ranks with difficulty at Spearman rho >= TARGET_RANK.
# Over 6 tasks rho moves in steps of 2/35, so 0.8 asks for rho >= 0.83, where
# scipy's p also falls below 0.05 (p 0.04); the summary shows p too.
TARGET_FRACTION = 0.95
TARGET_PERCENT = 15.0
TARGET_RANK = 0.8
# The base levelled off when its last chunk gained less test AP than this.
LEVELLED_GAIN = 0.01
# Means over fewer seeds are flagged in the summary.
MIN_SEEDS = 3


@dataclasses.dataclass(frozen=True)
class Result:
  """One (task, method) over its seeds: means and sample std."""
  task: str
  method: str
  seeds: int
  ap: float
  ap_std: float  # nan for one seed.
  ap50: float
  ap50_std: float
  percent: float
  file_bytes: float
  gates_on: float | None


# (task, method) -> its `Result`.
ByKey = Mapping[tuple[str, str], Result]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (nan for fewer than 2 values)."""
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
  return float(values.mean()), std


def results(runs: Sequence[rows.Run]) -> list[Result]:
  """A `Result` per (task, method), in the order they first appear."""
  groups = {}
  for run in runs:
    groups.setdefault((run.task, run.method), []).append(run)
  out = []
  for (task, method), group in groups.items():
    ap, ap_std = mean_std([r.ap for r in group])
    ap50, ap50_std = mean_std([r.ap50 for r in group])
    gates = [r.gates_on for r in group if r.gates_on is not None]
    out.append(Result(task, method, len(group), ap, ap_std, ap50, ap50_std,
                      float(np.mean([r.percent for r in group])),
                      float(np.mean([r.file_bytes for r in group])),
                      float(np.mean(gates)) if gates else None))
  return out


def _method_order(result: Result) -> tuple[int, float]:
  """Full fine-tuning, then fixed patches by size, then learned ones."""
  if result.method in (rows.FULL, rows.BASE):
    return (0, 0.0)
  size_weight = rows.spot_lambda(result.method)
  return (2, size_weight) if size_weight is not None else (1, result.percent)


def fraction_of_full(by_key: ByKey, task: str, method: str) -> float | None:
  """Mean AP of `method` / mean AP of full fine-tuning on `task`."""
  result, full = by_key.get((task, method)), by_key.get((task, rows.FULL))
  if result is None or full is None or full.ap <= 0:
    return None
  return result.ap / full.ap


def difficulty(by_key: ByKey, tasks: Sequence[str],
               base_ap: float) -> dict[str, float]:
  """Per task: base AP on its own test split - full fine-tune's AP."""
  return {t: base_ap - by_key[(t, rows.FULL)].ap for t in tasks
          if (t, rows.FULL) in by_key}


def feature_gap(by_key: ByKey, tasks: Sequence[str]) -> dict[str, float]:
  """Per task: 1 - predictor-patch AP / full AP (the base's features' gap)."""
  gaps = {t: fraction_of_full(by_key, t, 'predictor') for t in tasks}
  return {t: 1.0 - f for t, f in gaps.items() if f is not None}


def rank_correlation(sizes: Mapping[str, float],
                     measure: Mapping[str, float]
                     ) -> tuple[float, float, int] | None:
  """Spearman (rho, p, tasks) over the tasks in both; None below 3 tasks."""
  tasks = [t for t in sizes if t in measure]
  if len(tasks) < 3:
    return None
  rho, p = stats.spearmanr([sizes[t] for t in tasks],
                           [measure[t] for t in tasks])
  return float(rho), float(p), len(tasks)


def _mean_text(mean: float, std: float, seeds: int) -> str:
  if seeds < 2:
    return f'{mean:.3f} (1 seed)'
  return f'{mean:.3f} ± {std:.3f}'


def _missing(runs: Sequence[rows.Run],
             planned: Sequence[tuple[str, str, int]]
             ) -> list[tuple[str, str, int]]:
  """The planned (task, method, seed) runs without a row, in plan order."""
  present = {(r.task, r.method, r.seed) for r in runs}
  return [k for k in planned if k not in present]


def _caveats(missing: Sequence[tuple[str, str, int]], planned_runs: int,
             all_results: Sequence[Result]) -> list[str]:
  """The partial-study and few-seeds warnings (none for a full study)."""
  lines = []
  if missing:
    shown = ', '.join(f'{t}/{m}/seed {s}' for t, m, s in missing[:5])
    lines.append(f'**Partial study**: {len(missing)} of {planned_runs} '
                 f'planned runs have no row yet ({shown}'
                 f'{", ..." if len(missing) > 5 else ""}); every number '
                 'below uses the rows present.')
  few = [r for r in all_results
         if r.method != rows.BASE and r.seeds < MIN_SEEDS]
  if few:
    lines.append(f'**Fewer than {MIN_SEEDS} seeds**: {len(few)} of '
                 f'{len([r for r in all_results if r.method != rows.BASE])} '
                 '(task, method) results rest on fewer seeds (column '
                 '`seeds`), and so does every number built on them.')
  return lines


def _base_lines(curve: Sequence[rows.CurvePoint],
                base: Result | None) -> list[str]:
  """The base: how long it trained, its test AP and whether it levelled."""
  if base is None:
    return ['No base AP: the base was given without --base_task, so the '
            'task difficulty (base AP - full AP) is not measured.']
  lines = [f'Base AP on its own test split ({base.task}): {base.ap:.3f}.']
  if not curve:
    return lines + ['The base was given (--base_checkpoint), not trained '
                    'here.']
  points = sorted(curve, key=lambda p: p.steps)
  minutes = sum(p.seconds for p in points) / 60
  lines.append(f'Trained here: {points[-1].steps} steps in {len(points)} '
               f'chunks, {minutes:.1f} min. Test AP by step: ' + ', '.join(
                   f'{p.steps}: {p.ap:.3f}' for p in points) + '.')
  if len(points) > 1:
    gain = points[-1].ap - points[-2].ap
    verdict = (f'< {LEVELLED_GAIN:g}: levelled off' if gain < LEVELLED_GAIN
               else f'>= {LEVELLED_GAIN:g}: still rising')
    lines.append(f'Last chunk\'s AP gain: {gain:+.3f} ({verdict}).')
  return lines


def _mark(met: bool, complete: bool = True) -> str:
  """A target's verdict; not given while runs it rests on are missing."""
  if not complete:
    return '**not yet assessed**'
  return '**met**' if met else '**missed**'


def _assessable(tasks: Sequence[str], methods: Sequence[str],
                pending: set[tuple[str, str]]) -> bool:
  """No planned seed of `methods` on `tasks` is still to run."""
  return not any((t, m) in pending for t in tasks for m in methods)


def _size_target(by_key: ByKey, tasks: Sequence[str],
                 methods: Sequence[str],
                 pending: set[tuple[str, str]]) -> list[str]:
  """Target 1 per lambda: >= TARGET_FRACTION x full on every task, small."""
  lines = [f'- Learned patch >= {TARGET_FRACTION:g}x full fine-tuning\'s AP '
           f'on every task at <= {TARGET_PERCENT:g}% of the parameters on '
           'average:']
  for method in methods:
    fractions = {t: fraction_of_full(by_key, t, method) for t in tasks}
    fractions = {t: f for t, f in fractions.items() if f is not None}
    if not fractions:
      lines.append(f'  - **not measured** {method}: no task has both its '
                   'row and a full fine-tune with AP > 0.')
      continue
    worst = min(fractions, key=fractions.get)
    percent = float(np.mean([by_key[(t, method)].percent
                             for t in fractions]))
    met = fractions[worst] >= TARGET_FRACTION and percent <= TARGET_PERCENT
    complete = (len(fractions) == len(tasks) and
                _assessable(tasks, (method, rows.FULL), pending))
    lines.append(f'  - {_mark(met, complete)} {method}: worst {fractions[worst]:.2f}x '
                 f'({worst}), {percent:.1f}% of the parameters on average, '
                 f'{len(fractions)} of {len(tasks)} tasks.')
  return lines


def _rank_text(correlation: tuple[float, float, int] | None) -> str:
  if correlation is None:
    return 'not computable (fewer than 3 tasks)'
  rho, p, n = correlation
  if math.isnan(rho):
    return f'undefined (a constant ranking over {n} tasks)'
  return f'rho {rho:.2f} (p {p:.2f}, {n} tasks)'


def _rank_target(by_key: ByKey, tasks: Sequence[str], methods: Sequence[str],
                 base_ap: float | None,
                 pending: set[tuple[str, str]]) -> list[str]:
  """Target 2 per lambda: the patch's size ranks with task difficulty."""
  lines = [f'- The learned patch\'s size (% parameters) ranks with task '
           f'difficulty, Spearman rho >= {TARGET_RANK:g} against the full '
           'model\'s AP drop from the base (base AP - full AP); also shown, '
           'without a target, against 1 - predictor AP / full AP:']
  drops = difficulty(by_key, tasks, base_ap) if base_ap is not None else {}
  gaps = feature_gap(by_key, tasks)
  for method in methods:
    sizes = {t: by_key[(t, method)].percent for t in tasks
             if (t, method) in by_key}
    drop = rank_correlation(sizes, drops)
    met = drop is not None and drop[0] >= TARGET_RANK
    complete = (len(sizes) == len(tasks) and len(drops) == len(tasks) and
                _assessable(tasks, (method, rows.FULL), pending))
    mark = (_mark(met, complete)
            if drop is not None and not math.isnan(drop[0]) else
            '**not measured**')
    lines.append(f'  - {mark} {method}: {_rank_text(drop)}; against the '
                 f'feature gap {_rank_text(rank_correlation(sizes, gaps))}.')
  return lines


def _learned_table(by_key: ByKey, tasks: Sequence[str],
                   methods: Sequence[str], base_ap: float | None,
                   record_only: Sequence[str] = ()) -> list[str]:
  """Per task: difficulty, and each lambda's AP / full AP and size."""
  drops = difficulty(by_key, tasks, base_ap) if base_ap is not None else {}
  gaps = feature_gap(by_key, tasks)
  lines = ['| task | base AP - full AP | 1 - predictor/full | '
           + ' | '.join(methods) + ' |',
           '|---|---:|---:|' + '---:|' * len(methods)]
  for task in tasks:
    cells = []
    for method in methods:
      fraction = fraction_of_full(by_key, task, method)
      result = by_key.get((task, method))
      cells.append('' if fraction is None else
                   f'{fraction:.2f}x, {result.percent:.1f}%')
    drop = f'{drops[task]:.3f}' if task in drops else ''
    gap = f'{gaps[task]:.2f}' if task in gaps else ''
    lines.append(f'| {_task_label(task, record_only)} | {drop} | {gap} | '
                 + ' | '.join(cells) + ' |')
  return lines


def _task_table(task_results: Sequence[Result]) -> list[str]:
  lines = ['| method | seeds | AP | AP50 | % params | bytes | gates on |',
           '|---|---:|---:|---:|---:|---:|---:|']
  for r in sorted(task_results, key=_method_order):
    gates = '' if r.gates_on is None else f'{r.gates_on:.1f}'
    lines.append(f'| {r.method} | {r.seeds} | '
                 f'{_mean_text(r.ap, r.ap_std, r.seeds)} | '
                 f'{_mean_text(r.ap50, r.ap50_std, r.seeds)} | '
                 f'{r.percent:.2f} | {r.file_bytes:,.0f} | {gates} |')
  return lines


def _task_label(task: str, record_only: Sequence[str]) -> str:
  """The task's name, marked if it is reported outside the targets."""
  return f'{task} ({OUTSIDE})' if task in record_only else task


def _outside_lines(record_only: Sequence[str]) -> list[str]:
  if not record_only:
    return []
  return [f'- Recorded {OUTSIDE} (`--record_only_tasks`; why: '
          '[docs/detection.md](../../docs/detection.md#outside-the-targets)): '
          + ', '.join(record_only) + '.']


def summary_markdown(runs: Sequence[rows.Run],
                     planned: Sequence[tuple[str, str, int]],
                     curve: Sequence[rows.CurvePoint] = (),
                     record_only: Sequence[str] = ()) -> str:
  """The study's `summary.md`.

  Args:
    runs: The rows of `runs.csv`.
    planned: (task, method, seed) of every row the study should have; those
      without a row make it a partial study, said at the top.
    curve: The base's chunks (`base_curve.csv`), if it trained here.
    record_only: Tasks reported but left out of the targets.
  """
  all_results = results(runs)
  by_key = {(r.task, r.method): r for r in all_results}
  base = next((r for r in all_results if r.method == rows.BASE), None)
  tasks = list(dict.fromkeys(t for t, m, _ in planned if m != rows.BASE))
  tasks += [r.task for r in all_results if r.method != rows.BASE
            and r.task not in tasks]
  methods = list(dict.fromkeys(
      m for _, m, _ in [*planned, *((r.task, r.method, 0) for r in runs)]
      if rows.spot_lambda(m) is not None))
  targeted = [t for t in tasks if t not in record_only]
  base_ap = base.ap if base else None
  missing = _missing(runs, planned)
  pending = {(t, m) for t, m, _ in missing}  # Some planned seed has no row.
  lines = ['# Model-patch study: learned vs fixed patches vs fine-tuning', '',
           'AP, AP50: COCO metrics on each task\'s held-out test split, mean '
           '± sample std over seeds. % params: per-task trained parameters '
           'as a share of the detector\'s; bytes: the patch file (full: '
           'every weight as float32). Written by '
           '`univision.studies.model_patches`.', '']
  lines += [*_caveats(missing, len(planned), all_results), '', '## Base', '',
            *_base_lines(curve, base), '', '## Targets', '',
            *_size_target(by_key, targeted, methods, pending),
            *_rank_target(by_key, targeted, methods, base_ap, pending),
            *_outside_lines(record_only), '',
            '## Learned patch: AP / full fine-tune AP, % of parameters', '',
            *_learned_table(by_key, tasks, methods, base_ap, record_only), '']
  for task in tasks:
    task_results = [r for r in all_results if r.task == task
                    and r.method != rows.BASE]
    lines += [f'## {_task_label(task, record_only)}', '',
              *_task_table(task_results), '']
  return '\n'.join(lines)


def plot(runs: Sequence[rows.Run], path: str) -> None:
  """Per task: mean test AP vs % parameters, error bars over seeds."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  all_results = [r for r in results(runs) if r.method != rows.BASE]
  tasks = list(dict.fromkeys(r.task for r in all_results))
  learned = sorted({r.method for r in all_results
                    if rows.spot_lambda(r.method) is not None},
                   key=rows.spot_lambda)
  columns = min(3, max(1, len(tasks)))
  lines = max(1, math.ceil(len(tasks) / columns))
  figure, axes = pyplot.subplots(lines, columns, squeeze=False,
                                 figsize=(4.6 * columns, 3.8 * lines))
  for ax, task in zip(axes.flat, tasks):
    _plot_task(ax, sorted((r for r in all_results if r.task == task),
                          key=_method_order), learned)
    ax.set_title(task, fontsize=10)
  for ax in axes.flat[len(tasks):]:
    ax.set_visible(False)
  figure.supxlabel('per-task weights (% of the detector\'s parameters, log)')
  figure.supylabel('COCO AP on test (mean ± std over seeds)')
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  pyplot.close(figure)


_SPOT_MARKERS = ('s', '^', 'D', 'v', 'P', 'X')


def _plot_task(ax, task_results: Sequence[Result],
               learned: Sequence[str]) -> None:
  """One task's subplot: fixed patches as a line, the others as markers.

  Args:
    ax: The subplot.
    task_results: The task's results, in `_method_order`.
    learned: Every learned method of the study: each keeps one marker and
      colour across the subplots.
  """
  def bars(rs):
    return ([r.percent for r in rs], [r.ap for r in rs],
            np.nan_to_num([r.ap_std for r in rs]))

  fixed = [r for r in task_results if _method_order(r)[0] == 1]
  if fixed:
    ax.errorbar(*bars(fixed), marker='o', capsize=2, color='C0',
                label='fixed patches')
    for r in fixed:
      ax.annotate(r.method, (r.percent, r.ap), fontsize=5,
                  xytext=(3, -8), textcoords='offset points')
  for r in task_results:
    if r.method in learned:
      index = learned.index(r.method)
      ax.errorbar(*bars([r]), marker=_SPOT_MARKERS[index % len(_SPOT_MARKERS)],
                  color=f'C{1 + index % 9}', markersize=7, capsize=2,
                  linestyle='none', label=f'learned {r.method}')
  full = [r for r in task_results if r.method == rows.FULL]
  if full:
    ax.errorbar(*bars(full), marker='*', markersize=12, capsize=2,
                color='black', linestyle='none', label='full fine-tune')
  ax.set_xscale('log')
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=6)
