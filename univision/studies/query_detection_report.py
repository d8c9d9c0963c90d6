"""The query-modulation study's summary and figure, from its rows.

`summary_markdown` states, with the seed spread (mean ± sample standard
deviation over seeds), per setting: the standard pass's COCO mAP, query-AP
of the standard pass filtered to the query and of the query pass (present-
class queries and all queries), and the paired query-pass gain; then issue
#20's targets for every setting with a query pass (each a way of
training the joint model), over the seeds it shares with the standard-only
detector, each marked met or missed:

- its query pass beats the standard-only detector filtered to
  the query on present-class query-AP beyond the seed spread: the gain of
  the means exceeds sqrt(sd_a^2 + sd_b^2) of the two settings (not yet
  assessed while they share a single seed);
- its standard mAP is within 1 point (0.01) of the standard-only
  detector's.

Then where each setting's present-class query-AP goes
(`evaluation.query_headroom`, from `breakdown.csv`): AP with and without the
detections that are class confusions, at IoU 0.50:0.95 and 0.5, so that a
missed first target can be read against the most a query could add by
telling classes apart; and the capacity check, one-class detectors
(`specialists.csv`) against the standard-only detector filtered to their
class and the joint query pass for it. Then referring-style queries ("the
largest c", "the leftmost c"): the accuracy (IoU >= 0.5 of one answer box)
of each setting's query pass and of detect-then-select-by-rule on its
standard pass, the comparison the paper draws with referring-expression
systems; and whether AP levelled off: each setting's mean mAP (and
query-AP) gain over its last curve interval, below 0.01 counting as
levelled off.
"""
import math
import statistics
from typing import Sequence

JOINT = 'joint'
STANDARD_ONLY = 'standard_only'
LEVEL_OFF = 0.01


def _mean_sd(values: list[float]) -> str:
  mean = round(statistics.mean(values), 3) + 0.0  # No '-0.000'.
  if len(values) < 2:
    return f'{mean:.3f}'
  return f'{mean:.3f} ± {statistics.stdev(values):.3f}'


def _sd(values: list[float]) -> float:
  return statistics.stdev(values) if len(values) > 1 else 0.0


def _column(rows, field: str) -> list[float]:
  return [getattr(r, field) for r in rows if getattr(r, field) is not None]


def _cell(rows, field: str) -> str:
  values = _column(rows, field)
  return _mean_sd(values) if values else '-'


def _paired(rows, field: str, minus: str) -> list[float]:
  """Per-row `field - minus`, over the rows that have both."""
  return [getattr(r, field) - getattr(r, minus) for r in rows
          if getattr(r, field) is not None and getattr(r, minus) is not None]


def _paired_cell(rows, field: str, minus: str) -> str:
  values = _paired(rows, field, minus)
  return _mean_sd(values) if values else '-'


def _targets(by_setting: dict) -> list[str]:
  """Issue #20's targets for every setting with a query pass (each a way
  of training the joint model) against the standard-only detector, each
  over the seeds both settings have run."""
  lines = ['## Targets (issue #20)', '']
  alone = by_setting.get(STANDARD_ONLY)
  joint = {s: rs for s, rs in by_setting.items()
           if s != STANDARD_ONLY and _column(rs, 'query_present')}
  if not joint or not alone:
    return lines + [f'Not assessed: the `{STANDARD_ONLY}` setting and one '
                    'with a query pass both need rows.', '']
  for setting, rows in joint.items():
    seeds = sorted({r.seed for r in rows} & {r.seed for r in alone})
    if not seeds:
      lines.append(f'- `{setting}`: no seed in common with '
                   f'`{STANDARD_ONLY}` yet: **not yet assessed**.')
      continue
    ours = [r for r in rows if r.seed in seeds]
    theirs = [r for r in alone if r.seed in seeds]
    on = f'seed{"s" if len(seeds) > 1 else ""} {", ".join(map(str, seeds))}'
    query = _column(ours, 'query_present')
    filtered = _column(theirs, 'filtered_present')
    gain = statistics.mean(query) - statistics.mean(filtered)
    spread = math.hypot(_sd(query), _sd(filtered))
    head = (f'- `{setting}`, {on}: query pass vs standard-only filtered '
            f'(present-class query-AP): {statistics.mean(query):.3f} vs '
            f'{statistics.mean(filtered):.3f}, gain {gain:+.3f}')
    if len(seeds) < 2:
      lines.append(f'{head}, from a single run on each side (a seed spread '
                   'needs two): **not yet assessed**.')
    else:
      lines.append(f'{head} against a seed spread of {spread:.3f}: '
                   f'**{"met" if gain > spread else "missed"}**.')
    maps = (statistics.mean(_column(ours, 'map')),
            statistics.mean(_column(theirs, 'map')))
    delta = maps[0] - maps[1]
    lines.append(
        f'- `{setting}`, {on}: standard mAP vs standard-only: {maps[0]:.3f} '
        f'vs {maps[1]:.3f} ({delta:+.3f}; within 0.01: '
        f'**{"met" if abs(delta) <= 0.01 else "missed"}**).')
  return lines + ['']


def _referring(by_setting: dict) -> list[str]:
  rows = [r for rs in by_setting.values() for r in rs]
  if not _column(rows, 'referring_rule'):
    return []
  lines = ['## Referring queries', '',
           'One answer per (image, "the largest c" / "the leftmost c") for '
           'every class c the image holds; right if its IoU with the box the '
           'rule selects among the ground truth is >= 0.5. Query pass: its '
           'top detection. Select by rule: the rule applied to the standard '
           'pass\'s detections of c above a score threshold, the best of '
           'eight on the test cases themselves (favouring the baseline).', '',
           '| setting | query pass | select by rule (standard pass) | '
           'query - rule (paired) |', '|---|---:|---:|---:|']
  for setting, rs in by_setting.items():
    lines.append(f'| {setting} | {_cell(rs, "referring_query")} | '
                 f'{_cell(rs, "referring_rule")} | '
                 f'{_paired_cell(rs, "referring_query", "referring_rule")} |')
  return lines + ['']


def _breakdown(rows) -> list[str]:
  if not rows:
    return []
  lines = ['## Where present-class query-AP goes (last checkpoint)', '',
           'A confusion is a detection of q whose best-overlapping ground-'
           'truth box (IoU >= 0.5) is another class\'s object. Without them, '
           'the same detections score what perfect class discrimination '
           'would give with the same boxes and scores: the most a query can '
           'add by telling q from its look-alikes. The AP50 columns show '
           'how much AP the boxes\' looseness costs besides.', '',
           '| setting | detections | AP | AP without confusions | '
           'confusion cost (paired) | AP50 | AP50 without confusions |',
           '|---|---|---:|---:|---:|---:|---:|']
  groups = {}
  for row in rows:
    groups.setdefault((row.setting, row.detections), []).append(row)
  for (setting, detections), group in groups.items():
    lines.append(
        f'| {setting} | {detections.replace("_", " ")} | '
        f'{_cell(group, "ap")} | {_cell(group, "ap_confusion_free")} | '
        f'{_paired_cell(group, "ap_confusion_free", "ap")} | '
        f'{_cell(group, "ap50")} | '
        f'{_cell(group, "ap50_confusion_free")} |')
  return lines + ['']


def _specialists(rows) -> list[str]:
  if not rows:
    return []
  lines = ['## Capacity check: one-class detectors', '',
           'A one-class detector of c: the same network trained only to find '
           'c (the query pass alone, always asked for c), from the backbone '
           'on the settings\' schedule, or fine-tuned from the same seed\'s '
           'standard-only detector (it starts at the filtered baseline, as '
           'the query pass does), every weight or (`..._modulation_only`) '
           'the query\'s modulations and embedding alone; against that '
           'seed\'s standard-only detector filtered to c, the fine-tuned '
           'ones also against their control (the standard-only detector '
           'trained on as long at the same rate on every class, filtered to '
           'c), and the joint query pass for c; present-class AP of c on '
           'test. Query modulation can at most turn the shared detector into '
           'such a specialist per query: where the specialist gains nothing '
           'over its control, the task does not reward the modulation.', '',
           '| class | start | runs | steps | one-class detector | '
           'standard-only filtered | control, filtered | joint query pass | '
           'one-class - filtered (paired) | one-class - control (paired) |',
           '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|']
  for cls, start in sorted({(r.cls, r.start) for r in rows}):
    group = [r for r in rows if (r.cls, r.start) == (cls, start)]
    lines.append(
        f'| {cls} | {start} | {len(group)} | '
        f'{", ".join(sorted({str(r.steps) for r in group}))} | '
        f'{_cell(group, "specialist")} | '
        f'{_cell(group, "standard_only_filtered")} | '
        f'{_cell(group, "continued_filtered")} | '
        f'{_cell(group, "joint_query")} | '
        f'{_paired_cell(group, "specialist", "standard_only_filtered")} | '
        f'{_paired_cell(group, "specialist", "continued_filtered")} |')
  return lines + ['']


def _levelled(curve, settings: list[str]) -> list[str]:
  lines = ['## Did AP level off?', '',
           '| setting | steps evaluated | last interval mAP gain | '
           'last interval query-AP gain | levelled off (< 0.01) |',
           '|---|---|---:|---:|---|']
  for setting in settings:
    points = [p for p in curve if p.setting == setting]
    steps = sorted({p.steps for p in points})
    if len(steps) < 2:
      lines.append(f'| {setting} | {steps} | - | - | not known |')
      continue
    mean_at = lambda field, step: statistics.mean(
        _column([p for p in points if p.steps == step], field) or [0.0])
    gains = [mean_at(f, steps[-1]) - mean_at(f, steps[-2])
             for f in ('map', 'query_present')]
    has_query = bool(_column(points, 'query_present'))
    levelled = all(g < LEVEL_OFF for g in gains[:1 + has_query])
    lines.append(
        f'| {setting} | {", ".join(map(str, steps))} | {gains[0]:+.3f} | '
        f'{f"{gains[1]:+.3f}" if has_query else "-"} | '
        f'{"yes" if levelled else "no"} |')
  return lines + ['']


def summary_markdown(runs, curve, settings: list[str],
                     seeds: list[int], figures: Sequence[str] = (),
                     breakdown: Sequence = (),
                     specialists: Sequence = ()) -> str:
  """The study's `summary.md` (see the module docstring).

  `figures`: files next to it showing two queries on one image, one per
  queried setting (`query_detection_eval.two_queries`). `breakdown`: the
  study's `Breakdown` rows; `specialists` its `Specialist` rows.
  """
  by_setting = {s: [r for r in runs if r.setting == s] for s in settings}
  lines = ['# Query-modulated detection study', '',
           'Test split; mean ± sample sd over seeds. Query-AP: COCO AP '
           '(pycocotools) of the queried class, each class queried on '
           'every test image; "present": only queries whose class is in '
           'the image.', '',
           '| setting | runs | standard mAP | filtered, present | '
           'filtered, all | query pass, present | query pass, all | '
           'query - filtered (present, paired) | query better in |',
           '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
  for setting, rows in by_setting.items():
    gains = _paired(rows, 'query_present', 'filtered_present')
    lines.append(
        f'| {setting} | {len(rows)} | {_cell(rows, "map")} | '
        f'{_cell(rows, "filtered_present")} | {_cell(rows, "filtered_all")} '
        f'| {_cell(rows, "query_present")} | {_cell(rows, "query_all")} | '
        f'{_paired_cell(rows, "query_present", "filtered_present")} | '
        f'{f"{sum(g > 0 for g in gains)} of {len(gains)}" if gains else "-"}'
        ' |')
  missing = [f'{s}/seed {seed}' for s in settings for seed in seeds
             if not any(r.seed == seed for r in by_setting[s])]
  lines.append('')
  if missing:
    lines += [f'Missing runs (study in progress): {", ".join(missing)}.', '']
  lines += _targets(by_setting)
  lines += _breakdown([b for b in breakdown if b.setting in settings])
  lines += _specialists(specialists)
  lines += _referring(by_setting)
  lines += _levelled(curve, settings)
  if figures:
    lines += ['', '## Two queries on one test image', '',
              'The first test image holding two query classes (first seed): '
              'the standard detector\'s detections of both, then the query '
              'pass for each query.', '']
    lines += [f'![{f}]({f})' for f in figures]
  return '\n'.join(lines)


def plot(runs, path: str) -> None:
  """Present-class query-AP per setting: filtered and query pass per run."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  settings = list(dict.fromkeys(r.setting for r in runs))
  figure, axes = pyplot.subplots(figsize=(1.8 * len(settings) + 3, 4))
  for offset, (field, label, color) in zip(
      (-0.12, 0.12), (('filtered_present', 'standard pass filtered to q',
                       'tab:blue'),
                      ('query_present', 'query pass', 'tab:red'))):
    points = [(settings.index(r.setting) + offset, getattr(r, field))
              for r in runs if getattr(r, field) is not None]
    if points:
      axes.scatter(*zip(*points), color=color, label=label, s=18)
  for r in runs:
    if r.query_present is not None:
      i = settings.index(r.setting)
      axes.plot([i - 0.12, i + 0.12], [r.filtered_present, r.query_present],
                color='gray', lw=0.6)
  axes.set_xticks(range(len(settings)), settings)
  axes.set_ylabel('query-AP, present-class queries (test)')
  axes.legend(fontsize=8)
  axes.set_title('Query pass vs the standard pass filtered to the query '
                 '(lines pair one run)', fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  pyplot.close(figure)
