"""Smoke tests: the benchmark scripts still run end to end.

Tiny settings (one model at 32x32, one repeat); the assertions do not depend
on timings: rows are produced, ratios computed, int8 op counts reported.
The QAT metric is skipped for time: it takes minutes (Model Garden's QAT
build and conversion).
`benchmarks/` is not a package: its folder goes on `sys.path`, as when a
script is run, and the scripts are loaded from their files.
"""
import csv
import importlib.util
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), 'benchmarks')


def _load(name: str):
  if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)
  spec = importlib.util.spec_from_file_location(
      f'bench_{name}', os.path.join(BENCHMARKS, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _read(path: str) -> list[dict]:
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def test_mnv4_vs_model_garden_smoke(tmp_path):
  bench = _load('mnv4_vs_model_garden')
  csv_path, plot_path = tmp_path / 'mnv4.csv', tmp_path / 'mnv4.png'
  bench.main(['--models=MobileNetV4ConvSmall', '--resolution=32',
              '--repeats=1', '--warmup=0', '--train_repeats=1',
              '--train_warmup=0', '--train_batch=2', '--calibration=1',
              '--rss_repeats=2', '--skip=tflite_int8_qat', f'--csv={csv_path}',
              f'--plot={plot_path}'])
  rows = _read(csv_path)
  by_key = {(r['metric'], r['impl']): r for r in rows}
  for metric in ('tf', 'tflite_float', 'tflite_int8_ptq', 'train',
                 'train_peak_rss'):
    for impl in ('ours', 'model_garden'):
      assert float(by_key[metric, impl]['median']) > 0, (metric, impl)
  # A process holding TensorFlow and a model takes hundreds of MiB.
  assert float(by_key['train_peak_rss', 'ours']['median']) > 200
  assert by_key['train_peak_rss', 'model_garden']['repeats'] == '2'
  assert float(by_key['equivalence', 'ours_vs_model_garden']['median']) < 1e-4
  ours_int8 = by_key['tflite_int8_ptq', 'ours']
  assert int(ours_int8['total_ops']) > 0
  assert int(ours_int8['float_ops']) == 0
  ratios = (tmp_path / 'mnv4_ratios.md').read_text()
  assert '| MobileNetV4ConvSmall | tf | ms |' in ratios
  assert '| MobileNetV4ConvSmall | train_peak_rss | MiB |' in ratios
  # The second table: int8 / float per implementation, from the same run.
  ptq_ratio = (float(ours_int8['median'])
               / float(by_key['tflite_float', 'ours']['median']))
  assert (f'| MobileNetV4ConvSmall | ours | '
          f'{float(by_key["tflite_float", "ours"]["median"]):.4g} (') in ratios
  assert f'| {ptq_ratio:.3f} |' in ratios
  assert plot_path.stat().st_size > 0


def test_mnv4_vs_model_garden_defaults_to_the_models_model_garden_has():
  """timm's extra variants (e.g. Conv-S 0.35x) would crash a default run."""
  bench = _load('mnv4_vs_model_garden')
  assert bench.parse_args([]).models == [
      'MobileNetV4ConvSmall', 'MobileNetV4ConvMedium', 'MobileNetV4ConvLarge',
      'MobileNetV4HybridMedium', 'MobileNetV4HybridLarge']


def test_mqa_vs_mhsa_smoke(tmp_path):
  bench = _load('mqa_vs_mhsa')
  csv_path = tmp_path / 'mqa.csv'
  bench.main(['--resolution=64', '--models=MobileNetV4HybridMedium',
              '--repeats=1', '--warmup=0', f'--csv={csv_path}',
              f'--plot={tmp_path / "mqa.png"}'])
  rows = _read(csv_path)
  # 2 stages x 2 kv strides x 2 metrics x 2 layers.
  assert len(rows) == 16
  mqa = {(r['group'], r['metric']): r for r in rows if r['impl'] == 'mqa'}
  mhsa = {(r['group'], r['metric']): r for r in rows if r['impl'] == 'mhsa'}
  assert mqa.keys() == mhsa.keys()
  for key, row in mqa.items():
    # Fewer key/value heads: fewer parameters at equal dims.
    assert int(row['params']) < int(mhsa[key]['params'])
  assert 'speedup %' in (tmp_path / 'mqa_speedup.md').read_text()


@pytest.mark.parametrize('kv_strides', [1, 2])
def test_mhsa_baseline_shapes(kv_strides):
  _load('mqa_vs_mhsa')
  from benchlib import mhsa  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  layer = mhsa.MultiHeadSelfAttention(num_heads=4, key_dim=8,
                                      kv_strides=kv_strides)
  out = layer(tf.random.normal([2, 6, 10, 16]))
  assert out.shape == (2, 6, 10, 16)
  # 4 key and 4 value heads of dim 8, from 16 channels.
  assert layer.key_proj.kernel.shape == (1, 1, 16, 32)


def test_profile_train_step_smoke(tmp_path):
  bench = _load('profile_train_step')
  output = tmp_path / 'profile.md'
  (result,) = bench.main(['--models=MobileNetV4ConvSmall', '--resolution=32',
                          '--batch=2', '--steps=1', '--warmup=1',
                          f'--output={output}'])
  kinds = result['by_kind']
  assert kinds['conv: forward'] > 0 and kinds['conv: filter gradient'] > 0
  assert kinds['depthwise: forward'] > 0 and kinds['optimizer update'] > 0
  text = output.read_text()
  assert '### MobileNetV4ConvSmall, 32x32, batch 2' in text
  assert '| conv: forward |' in text


def test_profile_kinds_follow_the_op_type_and_name():
  bench = _load('profile_train_step')
  assert bench.kind_of('_MklNativeDepthwiseConv2dNativeBackpropFilter',
                       'x') == 'depthwise: filter gradient'
  assert bench.kind_of('_MklNativeConv2D', 'x') == 'conv: forward'
  assert bench.kind_of('Mul', 'AdamW/mul_3') == 'optimizer update'
  assert bench.kind_of('Mul', 'model/layer_scale/mul') == 'other'


def test_tflite_op_profile_smoke(tmp_path):
  bench = _load('tflite_op_profile')
  csv_path, md_path = tmp_path / 'ops.csv', tmp_path / 'ops.md'
  bench.main(['--models=MobileNetV4ConvSmall', '--resolution=32',
              '--repeats=1', '--min_sample_s=0', '--calibration=1',
              f'--csv={csv_path}', f'--markdown={md_path}'])
  rows = _read(csv_path)
  kinds = {r['kind'] for r in rows}
  assert kinds == {'float', 'int8_qat'}
  assert all(float(r['ms']) > 0 for r in rows)
  int8_ops = [r for r in rows if r['kind'] == 'int8_qat']
  assert {r['dtype'] for r in int8_ops} <= {'int8', 'uint8'}
  text = md_path.read_text()
  assert '### MobileNetV4ConvSmall, 32x32, 2 thread(s)' in text
  assert '| CONV_2D |' in text


def test_train_step_variants_smoke():
  bench = _load('train_step_variants')
  # One variant (one child process) for time; the others differ only in the
  # Keras policy or the number of batch parts.
  times = bench.main(['--variants=split_batch', '--resolution=32',
                      '--batch=4', '--passes=1', '--warmup=1', '--rounds=1',
                      '--steps=1'])
  assert list(times) == ['split_batch'] and times['split_batch'][0] > 0
  with pytest.raises(ValueError, match='--variants'):
    bench.main(['--variants=float16'])
