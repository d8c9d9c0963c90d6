"""Peak resident memory (RSS) of training, one implementation per process.

Each implementation trains in a fresh child process of its own (spawned: no
memory inherited from the parent's models): it builds its model, resets the
kernel's peak-RSS mark (`/proc/self/clear_refs`, Linux), runs a few
compiled training steps (`train_step`, as the throughput metric does) and
reports the peak RSS since the reset (`VmHWM`). Without the reset the
lifetime peak would be measured, and importing TensorFlow and Model Garden
alone peaks higher than training a small model (2349 MiB for both
implementations of Hybrid-M at 64 px, batch 4). Both children import the
same libraries, so the difference between them is the training memory.
"""
import multiprocessing
import queue as queue_lib
import time

import tf_keras

from benchlib import train_step


def _build(impl: str, model_id: str) -> tf_keras.Model:
  # Imported here: the child process builds the model itself.
  from benchlib import model_garden_pair  # pylint: disable=g-import-not-at-top
  from univision.efficiency import report  # pylint: disable=g-import-not-at-top
  if impl == 'ours':
    return report.classifier(model_id)
  if impl == 'model_garden':
    return model_garden_pair.model_garden_classifier(model_id)
  raise ValueError(f'unknown implementation {impl!r}.')


def _reset_peak_rss() -> None:
  """Sets the kernel's peak-RSS mark (VmHWM) to the current RSS."""
  with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')


def _peak_rss_kib() -> float:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return float(line.split()[1])
  raise OSError('/proc/self/status has no VmHWM line.')


def _child(impl: str, model_id: str, resolution: int, batch: int,
           steps: int, queue) -> None:
  try:
    model = _build(impl, model_id)
    step = train_step.train_step(
        model, batch, resolution, model.layers[-1].units,
        tf_keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9))
    _reset_peak_rss()
    for _ in range(steps):
      step()
    queue.put(('ok', _peak_rss_kib() / 1024))
  except Exception as e:  # pylint: disable=broad-except
    queue.put(('error', f'{type(e).__name__}: {e}'))


def peak_rss_mib(impl: str, model_id: str, resolution: int, batch: int,
                 steps: int = 3, timeout_s: float = 1800) -> float:
  """Peak RSS (MiB) of a process while it trains `impl`'s `model_id`.

  Linux only (/proc).

  Args:
    impl: `'ours'` or `'model_garden'`.
    model_id: A MobileNetV4 model id.
    resolution: Square training input size.
    batch: Training batch size.
    steps: Training steps (the first traces and compiles).
    timeout_s: The child is killed after this long.

  Raises:
    RuntimeError: naming the child's error, or its exit code.
  """
  context = multiprocessing.get_context('spawn')
  queue = context.Queue()
  child = context.Process(target=_child, args=(impl, model_id, resolution,
                                               batch, steps, queue))
  child.start()
  deadline = time.monotonic() + timeout_s
  status = value = None
  while status is None and time.monotonic() < deadline:
    exited = not child.is_alive()
    try:
      status, value = queue.get(timeout=5)
    except queue_lib.Empty:
      if exited:  # It died without a result (e.g. killed for memory).
        break
  child.join(60)
  if child.is_alive():
    child.kill()
  if status is None:
    raise RuntimeError(f'{impl} {model_id}: training-memory child gave no '
                       f'result in {timeout_s:.0f} s (exit code '
                       f'{child.exitcode}).')
  if status != 'ok':
    raise RuntimeError(f'{impl} {model_id}: {value}')
  return value
