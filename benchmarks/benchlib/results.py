"""Benchmark rows: CSV, a ratio table in markdown, and a bar plot.

A row is a flat dict with at least `group` (e.g. the model id), `metric`,
`impl`, `unit` and `median` (None when the measurement failed, with the
reason in `error`). Rows are written as they are; the table and plot pair
two implementations per (group, metric).
"""
import csv
import os

from benchlib import timing

FIELDS = ('group', 'resolution', 'metric', 'impl', 'unit', 'median', 'q1',
          'q3', 'min', 'max', 'repeats', 'total_ops', 'float_ops', 'error',
          'note')


def row(group: str, metric: str, impl: str, unit: str,
        summary: timing.Summary | None = None, **extra) -> dict:
  """One result row; `summary` None means the measurement failed."""
  values = dict(group=group, metric=metric, impl=impl, unit=unit)
  if summary is not None:
    values.update(median=summary.median, q1=summary.q1, q3=summary.q3,
                  min=summary.minimum, max=summary.maximum,
                  repeats=summary.repeats)
  values.update(extra)
  return values


def write_csv(rows: list[dict], path: str) -> None:
  """Writes `rows` with the columns of `FIELDS` plus any extra keys."""
  fields = list(FIELDS) + sorted({k for r in rows for k in r} - set(FIELDS))
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


def _pairs(rows: list[dict], numerator: str, denominator: str):
  """(group, metric) -> (numerator row, denominator row), in row order."""
  found = {}
  for r in rows:
    if r['impl'] in (numerator, denominator):
      found.setdefault((r['group'], r['metric']), {})[r['impl']] = r
  return {key: (v.get(numerator), v.get(denominator))
          for key, v in found.items()}


def ratio(num: dict | None, den: dict | None) -> float | None:
  """num median / den median, or None if either is missing or failed."""
  if not num or not den or num.get('median') is None or not den.get(
      'median'):
    return None
  return num['median'] / den['median']


def cell(r: dict | None) -> str:
  """A row's median (with float-op counts), '-' or 'failed: why'."""
  if r is None:
    return '-'
  if r.get('median') is None:
    return 'failed: ' + str(r.get('error', '?')).splitlines()[0][:90]
  text = f'{r["median"]:.4g}'
  if r.get('float_ops') not in (None, ''):
    text += f' ({r["float_ops"]}/{r["total_ops"]} float ops)'
  return text


def _iqrs_overlap(a: dict, b: dict) -> bool:
  """Whether the interquartile ranges of two rows overlap."""
  if any(r.get(k) is None for r in (a, b) for k in ('q1', 'q3')):
    return False
  return a['q1'] <= b['q3'] and b['q1'] <= a['q3']


def ratio_table(rows: list[dict], numerator: str, denominator: str,
                higher_is_better: dict[str, bool]) -> str:
  """A markdown table: both medians and their ratio per (group, metric).

  The verdict is 'yes' when the numerator is better or equal, 'no' when it
  is worse and the interquartile ranges of the two are apart, and 'tie' when
  it is worse but the ranges overlap (within the run's noise).

  Args:
    rows: Result rows.
    numerator: The impl on top of the ratio (e.g. 'ours').
    denominator: The impl below (e.g. 'model_garden').
    higher_is_better: Metric -> whether larger values are better; metrics
      missing from it are left out of the table.
  """
  lines = [f'| group | metric | unit | {numerator} | {denominator} | '
           f'{numerator}/{denominator} | {numerator} better or equal |',
           '|---|---|---|---|---|---|---|']
  for (group, metric), (num, den) in _pairs(rows, numerator,
                                            denominator).items():
    if metric not in higher_is_better:
      continue
    value = ratio(num, den)
    verdict = '-'
    if value is not None:
      verdict = 'yes' if (value >= 1) == higher_is_better[metric] or (
          value == 1) else 'no'
      if verdict == 'no' and _iqrs_overlap(num, den):
        verdict = 'tie (IQRs overlap)'
    unit = (num or den)['unit']
    lines.append(f'| {group} | {metric} | {unit} | {cell(num)} | '
                 f'{cell(den)} | '
                 f'{"-" if value is None else f"{value:.3f}"} | {verdict} |')
  return '\n'.join(lines)


def plot(rows: list[dict], impls: tuple[str, str], metrics: list[str],
         path: str, title: str = '') -> None:
  """Grouped bars (median, IQR whiskers) per group, one panel per metric."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  metrics = [m for m in metrics if any(r['metric'] == m for r in rows)]
  if not metrics:
    return
  fig, axes = plt.subplots(1, len(metrics),
                           figsize=(4.2 * len(metrics), 5), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    pairs = _pairs([r for r in rows if r['metric'] == metric], *impls)
    groups = [group for group, _ in pairs]
    for offset, impl_index in ((-0.2, 0), (0.2, 1)):
      medians, low, high = [], [], []
      for key in pairs:
        r = pairs[key][impl_index]
        ok = r is not None and r.get('median') is not None
        medians.append(r['median'] if ok else 0.0)
        low.append(r['median'] - r.get('q1', r['median']) if ok else 0.0)
        high.append(r.get('q3', r['median']) - r['median'] if ok else 0.0)
      ax.bar([i + offset for i in range(len(groups))], medians, width=0.4,
             yerr=[low, high], capsize=3, label=impls[impl_index])
      for i, key in enumerate(pairs):
        r = pairs[key][impl_index]
        if r is not None and r.get('median') is None:
          ax.text(i + offset, 0, 'failed', rotation=90, ha='center',
                  va='bottom', fontsize=7)
    unit = next(r['unit'] for r in rows if r['metric'] == metric)
    ax.set_title(metric, fontsize=9)
    ax.set_ylabel(unit)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.replace('MobileNetV4', '') for g in groups],
                       rotation=35, ha='right', fontsize=7)
  axes[0][0].legend(fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
