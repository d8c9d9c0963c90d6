"""Two `train.py` workers with MultiWorkerMirroredStrategy on 127.0.0.1.

The run is the `tests/test_train.py` one (Fashion-MNIST-format records, 32x32
MNv4-Conv-S, global batch 8) with `runtime.distribution_strategy:
multi_worker_mirrored` and a TF_CONFIG per process. Worker 0 is the chief: it
checkpoints to `--model_dir`; Model Garden's `train_lib` makes the other
worker checkpoint to a `tempfile.mkdtemp()` folder, which lands under the
worker's own TMPDIR here so the test can read it.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from tests import test_train
from univision import registry_imports  # pylint: disable=unused-import

NUM_WORKERS = 2
STEPS = 4
GLOBAL_BATCH = 8
# A hung collective (e.g. one worker died) must fail the test, not hang CI.
TIMEOUT_S = 300


def _free_ports(n: int) -> list[int]:
  """`n` distinct ports on 127.0.0.1 that were free a moment ago."""
  sockets = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(('127.0.0.1', 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _tail(path: str, lines: int = 40) -> str:
  with open(path, errors='replace') as f:
    return ''.join(f.readlines()[-lines:])


def _launch(root: str, data_dir: str, timeout_s: float = TIMEOUT_S,
            start: tuple[int, ...] = tuple(range(NUM_WORKERS))
            ) -> list[dict[str, object]]:
  """Starts the workers, waits for all; kills all on timeout or a failure.

  Args:
    root: Holds the model folder and each worker's TMPDIR and logs.
    data_dir: The Fashion-MNIST-format TFRecords.
    timeout_s: How long the whole run may take.
    start: The task indices to start (all but for the hang test).

  Returns:
    Per worker: its process, TMPDIR, stdout file and stdout text.

  Raises:
    AssertionError: with each worker's stderr tail, if one failed or the run
      timed out.
  """
  cluster = {'worker': [f'127.0.0.1:{p}' for p in _free_ports(NUM_WORKERS)]}
  override = test_train._overrides(data_dir, STEPS) + (  # pylint: disable=protected-access
      ',runtime.distribution_strategy=multi_worker_mirrored')
  workers = []
  for index in start:
    tmp = os.path.join(root, f'tmp{index}')
    os.makedirs(tmp)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TMPDIR=tmp,
               TF_NUM_INTRAOP_THREADS='1', TF_NUM_INTEROP_THREADS='2',
               TF_CONFIG=json.dumps({'cluster': cluster, 'task': {
                   'type': 'worker', 'index': index}}))
    out = os.path.join(root, f'worker{index}.out')
    err = os.path.join(root, f'worker{index}.err')
    with open(out, 'w') as stdout, open(err, 'w') as stderr:
      process = subprocess.Popen(
          [sys.executable, 'train.py', '--experiment=mnv4_fashion_mnist',
           '--mode=train_and_eval', f'--config_file={test_train.YAML}',
           f'--model_dir={os.path.join(root, "run")}',
           f'--params_override={override}'],
          cwd=conftest.REPO, env=env, stdout=stdout, stderr=stderr)
    workers.append(dict(index=index, process=process, tmp=tmp, out=out,
                        err=err))
  deadline = time.monotonic() + timeout_s
  try:
    while (any(w['process'].poll() is None for w in workers) and
           time.monotonic() < deadline and
           not any(w['process'].poll() for w in workers)):  # One failed.
      time.sleep(0.5)
  finally:  # Also on Ctrl-C: leave no worker behind.
    hung = [w for w in workers if w['process'].poll() is None]
    for w in hung:
      w['process'].kill()
      w['process'].wait()
  failed = hung or any(w['process'].returncode for w in workers)
  if failed:
    reason = (f'timed out after {timeout_s}s' if time.monotonic() >= deadline
              else 'a worker failed')
    raise AssertionError(f'multi-worker train.py {reason}:\n' + '\n'.join(
        f'--- worker {w["index"]} (exit {w["process"].returncode}) stderr '
        f'tail:\n{_tail(w["err"])}' for w in workers))
  for w in workers:
    with open(w['out']) as f:
      w['stdout'] = f.read()
  return workers


@pytest.fixture(scope='module')
def two_workers(tmp_path_factory, fake_fmnist_tfrecords):
  root = str(tmp_path_factory.mktemp('multi_worker'))
  return dict(model_dir=os.path.join(root, 'run'),
              workers=_launch(root, fake_fmnist_tfrecords))


def _train_logs(stdout: str) -> dict[int, dict[str, float]]:
  """The metrics Orbit printed after each training loop, by step."""
  logs = {}
  for step, block in re.findall(
      r'train \| step:\s+(\d+) \|[^\n]*output: \n(\s+\{.*?\})', stdout,
      flags=re.DOTALL):
    logs[int(step)] = {k: float(v) for k, v in re.findall(
        r"'(\w+)': np\.float32\(([^)]+)\)", block)}
  return logs


def _worker_checkpoint_dirs(tmp: str) -> list[str]:
  return sorted(os.path.dirname(p)
                for p in tf.io.gfile.glob(os.path.join(tmp, '*', 'checkpoint')))


def test_both_workers_train_the_same_steps_and_metrics(two_workers):
  chief, worker = (w['stdout'] for w in two_workers['workers'])
  chief_logs, worker_logs = _train_logs(chief), _train_logs(worker)
  assert sorted(chief_logs) == [2, 4]  # steps_per_loop=2
  assert set(chief_logs[STEPS]) >= {'training_loss', 'accuracy'}
  # The loss and metrics are reduced over both workers' replicas, so both
  # workers print the same numbers.
  assert chief_logs == worker_logs
  final = [l for l in chief.splitlines() if l.startswith('Final evaluation:')]
  assert len(final) == 1
  assert final[0] in worker.splitlines()


def test_chief_checkpoints_to_model_dir_worker_to_its_temp_dir(two_workers):
  model_dir = two_workers['model_dir']
  chief, worker = two_workers['workers']
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest == os.path.join(model_dir, f'ckpt-{STEPS}')
  assert tf.train.load_variable(
      latest, 'global_step/.ATTRIBUTES/VARIABLE_VALUE') == STEPS
  state = tf.train.get_checkpoint_state(model_dir)
  assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
      'ckpt-2', 'ckpt-4']
  with open(os.path.join(model_dir, 'params.yaml')) as f:
    assert "distribution_strategy: multi_worker_mirrored" in f.read()
  # Only the chief writes summaries: one event file per summary folder.
  for folder in ('train', 'validation'):
    events = os.listdir(os.path.join(model_dir, folder))
    assert len(events) == 1, (folder, events)
  assert _worker_checkpoint_dirs(chief['tmp']) == []
  worker_dirs = _worker_checkpoint_dirs(worker['tmp'])
  assert len(worker_dirs) == 1
  assert os.path.basename(tf.train.latest_checkpoint(worker_dirs[0])) == (
      f'ckpt-{STEPS}')


def test_worker_weights_equal_the_chiefs(two_workers):
  chief_ckpt = tf.train.latest_checkpoint(two_workers['model_dir'])
  worker_dir, = _worker_checkpoint_dirs(two_workers['workers'][1]['tmp'])
  worker_ckpt = tf.train.latest_checkpoint(worker_dir)
  names = [n for n, _ in tf.train.list_variables(chief_ckpt)]
  assert names == [n for n, _ in tf.train.list_variables(worker_ckpt)]
  # The whole model: the backbone (BN statistics too), head and optimizer.
  assert sum(n.startswith('backbone/') for n in names) > 100
  assert any('/moving_mean/' in n for n in names)
  assert any(n.startswith('model/') for n in names)
  for name in names:
    np.testing.assert_array_equal(
        tf.train.load_variable(worker_ckpt, name),
        tf.train.load_variable(chief_ckpt, name), err_msg=name)
  # And training moved them: the weights are not the step-2 ones.
  kernel = 'model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE'
  step2 = os.path.join(two_workers['model_dir'], 'ckpt-2')
  assert not np.array_equal(tf.train.load_variable(chief_ckpt, kernel),
                            tf.train.load_variable(step2, kernel))


def test_global_batch_is_split_between_the_workers(fake_fmnist_tfrecords):
  """Each worker's pipeline gives global / replicas examples, disjoint.

  These are the input contexts `distribute_datasets_from_function` passes
  under MultiWorkerMirroredStrategy with one CPU replica per worker.
  """
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override({'task': {
      'model': {'input_size': [32, 32, 3]},
      'train_data': {'input_path': f'{fake_fmnist_tfrecords}/train-*',
                     'global_batch_size': GLOBAL_BATCH},
      'validation_data': {'input_path': f'{fake_fmnist_tfrecords}/test-*',
                          'global_batch_size': GLOBAL_BATCH},
  }})
  task = task_factory.get_task(params.task)
  per_replica = GLOBAL_BATCH // NUM_WORKERS
  seen = []
  for index in range(NUM_WORKERS):
    context = tf.distribute.InputContext(
        num_input_pipelines=NUM_WORKERS, input_pipeline_id=index,
        num_replicas_in_sync=NUM_WORKERS)
    images, _ = next(iter(task.build_inputs(params.task.train_data, context)))
    assert images.shape == (per_replica, 32, 32, 3)
    # Validation has no augmentation, so records can be told apart.
    batches = list(task.build_inputs(params.task.validation_data, context))
    assert all(b[0].shape[0] == per_replica for b in batches)
    seen.append({b.tobytes() for images, _ in batches
                 for b in images.numpy()})
  assert not seen[0] & seen[1]
  assert len(seen[0] | seen[1]) == 32  # The whole fake test split.


def test_a_hung_worker_is_killed_and_reported(fake_fmnist_tfrecords,
                                              tmp_path):
  """Worker 0 alone waits forever for worker 1: the timeout must end it."""
  with pytest.raises(AssertionError, match=(
      r'(?s)timed out after 15s.*--- worker 0 \(exit -9\) stderr tail')):
    _launch(str(tmp_path), fake_fmnist_tfrecords, timeout_s=15, start=(0,))
