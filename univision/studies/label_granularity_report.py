"""The label-granularity study's summary and figures, from its rows.

`summary_markdown` reports, with the seed spread (mean ± sample sd):

- per (level, method), at the hyper-parameters chosen on val: accuracy at
  the level, MaxBoxAccV2, Top-1 Loc, PxAP, and the share of CAM mass on the
  label-deciding part next to the part's area;
- the paper's comparison (Cole et al., ECCV 2022): the range of mean
  MaxBoxAccV2 (and PxAP) over label levels for the best method against the
  range over methods at the best level, and which is larger;
- the data-efficiency runs (fractions of the training images);
- the hyper-parameter search on val, the chosen candidate marked.
"""
import statistics

LEVEL_METRICS = ('accuracy', 'MaxBoxAccV2', 'Top-1 Loc', 'PxAP',
                 'part_cam_mass', 'part_area')


def _cell(values: list[float], scale: float = 1.0) -> str:
  values = [scale * v for v in values if v is not None]
  if not values:
    return '-'
  if len(values) == 1:
    return f'{values[0]:.1f}'
  return f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'


def _mean(rows: list[dict], metric: str) -> float | None:
  values = [r[metric] for r in rows if r.get(metric) is not None]
  return statistics.mean(values) if values else None


def _main(runs: list[dict]) -> list[dict]:
  return [r for r in runs if r['fraction'] == 1.0]


def means(runs: list[dict], metric: str) -> dict[tuple[str, str], float]:
  """{(level, method): mean of `metric` over seeds} of the full-data runs."""
  main = _main(runs)
  keys = dict.fromkeys((r['level'], r['method']) for r in main)
  out = {}
  for key in keys:
    value = _mean([r for r in main if (r['level'], r['method']) == key],
                  metric)
    if value is not None:
      out[key] = value
  return out


def ranges(runs: list[dict], metric: str) -> dict[str, object] | None:
  """The range over levels (best method) and over methods (best level).

  The best method has the highest mean over levels, the best level the
  highest mean over methods; None unless every (level, method) of the
  full-data runs has a value and there are two levels and two methods.
  """
  by_key = means(runs, metric)
  levels = list(dict.fromkeys(level for level, _ in by_key))
  methods = list(dict.fromkeys(method for _, method in by_key))
  if (len(levels) < 2 or len(methods) < 2 or
      len(by_key) != len(levels) * len(methods)):
    return None
  best_method = max(methods, key=lambda m: statistics.mean(
      by_key[(l, m)] for l in levels))
  best_level = max(levels, key=lambda l: statistics.mean(
      by_key[(l, m)] for m in methods))
  over_levels = [by_key[(l, best_method)] for l in levels]
  over_methods = [by_key[(best_level, m)] for m in methods]
  return {'best_method': best_method, 'best_level': best_level,
          'over_levels': max(over_levels) - min(over_levels),
          'over_methods': max(over_methods) - min(over_methods)}


def _comparison(runs: list[dict]) -> list[str]:
  lines = ['## Label level vs WSOL method', '']
  for metric in ('MaxBoxAccV2', 'PxAP'):
    found = ranges(runs, metric)
    if found is None:
      lines.append(f'- {metric}: not assessed (every level x method needs '
                   'full-data runs).')
      continue
    larger = ('the label level' if found['over_levels'] > found['over_methods']
              else 'the WSOL method')
    lines.append(
        f'- {metric}: over label levels (best method, '
        f'{found["best_method"]}) the mean moves by '
        f'{found["over_levels"]:.1f} points; over methods (best level, '
        f'{found["best_level"]}) by {found["over_methods"]:.1f}: '
        f'**{larger} matters more** here.')
  return lines + ['']


def summary_markdown(runs: list[dict], search: list[dict],
                     chosen: dict[tuple[str, str], str],
                     missing: list[str]) -> str:
  """The study's `summary.md` (see the module docstring)."""
  lines = ['# Label granularity vs WSOL method', '',
           'Test split, at each (level, method)\'s hyper-parameters and CAM '
           'threshold chosen on val (Choe et al.\'s protocol); mean ± sample '
           'sd over seeds; percent. Part mass: the share of each CAM on the '
           'label-deciding marker; part area: its share of the image (what '
           'a uniform map puts there).', '',
           '| level | method | chosen | runs | ' +
           ' | '.join(LEVEL_METRICS) + ' |',
           '|---|---|---|---:|' + '---:|' * len(LEVEL_METRICS)]
  main = _main(runs)
  for key in dict.fromkeys((r['level'], r['method']) for r in main):
    rows = [r for r in main if (r['level'], r['method']) == key]
    cells = [_cell([r[m] for r in rows], 100.0 if m == 'accuracy' else 1.0)
             for m in LEVEL_METRICS]
    lines.append(f'| {key[0]} | {key[1]} | {chosen.get(key, "-")} | '
                 f'{len(rows)} | ' + ' | '.join(cells) + ' |')
  lines.append('')
  if missing:
    lines += [f'Missing runs (study in progress): {", ".join(missing)}.', '']
  lines += _comparison(runs)
  efficiency = [r for r in runs if r['fraction'] != 1.0]
  if efficiency:
    lines += ['## Data efficiency', '',
              '| level | method | train fraction | runs | accuracy | '
              'MaxBoxAccV2 | PxAP |', '|---|---|---:|---:|---:|---:|---:|']
    keys = sorted({(r['level'], r['method'], r['fraction'])
                   for r in runs if (r['level'], r['method']) in
                   {(e['level'], e['method']) for e in efficiency}},
                  key=lambda k: (k[0], k[1], k[2]))
    for level, method, fraction in keys:
      rows = [r for r in runs
              if (r['level'], r['method'], r['fraction']) ==
              (level, method, fraction)]
      lines.append(
          f'| {level} | {method} | {fraction:g} | {len(rows)} | '
          f'{_cell([r["accuracy"] for r in rows], 100.0)} | '
          f'{_cell([r["MaxBoxAccV2"] for r in rows])} | '
          f'{_cell([r["PxAP"] for r in rows])} |')
    lines.append('')
  if search:
    lines += ['## Hyper-parameter search (val, seed 0)', '',
              '| level | method | candidate | val MaxBoxAccV2 | chosen |',
              '|---|---|---|---:|---|']
    for r in search:
      mark = ('yes' if chosen.get((r['level'], r['method'])) == r['candidate']
              else '')
      lines.append(f'| {r["level"]} | {r["method"]} | {r["candidate"]} | '
                   f'{r["MaxBoxAccV2"]:.1f} | {mark} |')
    lines.append('')
  return '\n'.join(lines)


def plot(runs: list[dict], path: str) -> None:
  """MaxBoxAccV2, PxAP and part mass per method, one bar per level."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  main = _main(runs)
  levels = list(dict.fromkeys(r['level'] for r in main))
  methods = list(dict.fromkeys(r['method'] for r in main))
  figure, axes = pyplot.subplots(1, 3, figsize=(12, 3.6))
  width = 0.8 / max(1, len(levels))
  for ax, metric in zip(axes, ('MaxBoxAccV2', 'PxAP', 'part_cam_mass')):
    for i, level in enumerate(levels):
      values = [_mean([r for r in main if (r['level'], r['method']) ==
                       (level, method)], metric) or 0.0 for method in methods]
      ax.bar([j + i * width for j in range(len(methods))], values, width,
             label=level)
    ax.set_xticks([j + width * (len(levels) - 1) / 2
                   for j in range(len(methods))], methods)
    ax.set_title(metric, fontsize=9)
  axes[0].legend(title='training labels', fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)
