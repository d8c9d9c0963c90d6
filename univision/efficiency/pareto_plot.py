"""Pareto plot of roofline estimates: latency vs MACs and vs top-1."""
import matplotlib

matplotlib.use('Agg')
from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
  """Names of the (cost, accuracy) points no other point beats on both.

  Args:
    points: (cost, accuracy) per name; lower cost and higher accuracy win.

  Returns:
    The Pareto-optimal names, by increasing cost.
  """
  front = [
      name for name, (cost, acc) in points.items()
      if not any(c <= cost and a >= acc and (c, a) != (cost, acc)
                 for c, a in points.values())]
  return sorted(front, key=lambda name: points[name][0])


def plot(rows: dict[str, dict[str, float]], top1: dict[str, float],
         title: str, path: str) -> None:
  """Writes estimated latency vs GMACs and top-1 vs latency to a PNG.

  Args:
    rows: Per model, a dict with `gmacs` and `latency_ms`.
    top1: Per model, ImageNet top-1 (%).
    title: The hardware's name.
    path: The PNG to write.
  """
  fig, (by_macs, by_top1) = plt.subplots(1, 2, figsize=(11, 4.5))
  for name, row in rows.items():
    label = name.replace('MobileNetV4', '')
    by_macs.scatter(row['gmacs'], row['latency_ms'])
    by_macs.annotate(label, (row['gmacs'], row['latency_ms']), fontsize=8)
    by_top1.scatter(row['latency_ms'], top1[name])
    by_top1.annotate(label, (row['latency_ms'], top1[name]), fontsize=8)
  front = pareto_front({n: (r['latency_ms'], top1[n]) for n, r in rows.items()})
  by_top1.plot([rows[n]['latency_ms'] for n in front],
               [top1[n] for n in front], '--', color='gray',
               label='Pareto front')
  by_macs.set(xlabel='GMACs', ylabel='estimated latency (ms)',
              title='roofline latency vs MACs')
  by_top1.set(xlabel='estimated latency (ms)',
              ylabel='ImageNet top-1 (%, paper)',
              title='top-1 vs roofline latency')
  by_top1.legend()
  fig.suptitle(f'MobileNetV4 roofline estimates: {title}')
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
