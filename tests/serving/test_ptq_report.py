"""The PTQ report: fresh-process runs, estimators and the summary."""
import csv

import numpy as np
import pytest

from univision.core import config_parsing
from univision.quantization import tflite_ops
from univision.serving import ptq_report
from univision.serving import tflite


@pytest.fixture(name='checkpoint', scope='module')
def _checkpoint(classifier_checkpoint):
  return classifier_checkpoint


@pytest.fixture(scope='module')
def float_model(checkpoint, tmp_path_factory):
  folder = tmp_path_factory.mktemp('float')
  return tflite.export_tflite(
      'mnv4_fashion_mnist', None, checkpoint['override'], checkpoint['path'],
      str(folder / 'export'), str(folder / 'float.tflite'))


def test_a_run_exports_in_a_fresh_process_and_is_evaluated(
    checkpoint, float_model, tmp_path):
  params = config_parsing.parse_experiment('mnv4_fashion_mnist', None,
                                           checkpoint['override'])
  path = str(tmp_path / 'ptq.tflite')
  command = ptq_report.export_command('mnv4_fashion_mnist', [],
                                      checkpoint['path'], path)
  command.append(f'--params_override={checkpoint["override"]}')
  command.append('--calibration_images=16')
  (row,) = ptq_report.repeated_runs(params, command, path, 1, float_model)
  assert row['run'] == 1 and len(row['sha256']) == 64
  runner = tflite_ops.load_interpreter(path).get_signature_runner()
  (_, details), = runner.get_input_details().items()
  assert details['dtype'] == np.uint8  # --quant_type=ptq: uint8 I/O.
  assert row['sha256'] == ptq_report.sha256(path)
  assert 0 <= row['ptq_top1'] <= 1 and 0 <= row['agreement'] <= 1
  command.append('--calibration_estimator=none')  # Fails at flag parsing.
  with pytest.raises(RuntimeError,
                     match=r'(?s)PTQ run 1 failed:.*calibration_estimator'):
    ptq_report.repeated_runs(params, command, path, 1, float_model)


def test_a_planted_outlier_is_calibrated_with_and_without(
    checkpoint, float_model, tmp_path):
  params = config_parsing.parse_experiment('mnv4_fashion_mnist', None,
                                           checkpoint['override'])
  rows = ptq_report.estimator_rows(
      params, checkpoint['path'], f'{checkpoint["data"]}/train-00001*',
      float_model, str(tmp_path), 20.0, 8,
      settings=(('image_percentile', 99.0),))
  assert [r['outlier_image'] for r in rows] == [False, True]
  path = tmp_path / 'estimators.csv'
  ptq_report.write_csv(str(path), ptq_report.ESTIMATOR_COLUMNS, rows)
  with open(path) as f:
    assert [r['estimator'] for r in csv.DictReader(f)] == [
        'image_percentile'] * 2


def _run(run, float_top1, ptq_top1, agreement, sha='a' * 64):
  return dict(run=run, float_top1=float_top1, ptq_top1=ptq_top1,
              agreement=agreement, sha256=sha)


def test_summary_marks_the_targets():
  estimators = [dict(outlier_image=True, estimator='minmax', percentile=100.0,
                     top1=0.11, agreement=0.1)]
  text = ptq_report.summary(
      [_run(1, 0.90, 0.895, 0.99), _run(2, 0.90, 0.90, 0.98)], estimators,
      ['--quant_type=ptq'], 'held-*', 20.0, 'test CPU')
  assert 'within 1 point of float: **met**, 2 of 2 runs' in text
  assert 'identical in every run' in text
  assert '| yes | minmax | 100 | 11.00% | 10.00% |' in text
  text = ptq_report.summary(
      [_run(1, 0.90, 0.88, 0.99), _run(2, 0.90, 0.90, 0.96, 'b' * 64)],
      estimators, ['--quant_type=ptq'], 'held-*', 20.0, 'test CPU')
  assert 'within 1 point of float: **missed**, 1 of 2 runs' in text
  assert '>= 97%: **missed**, 1 of 2 runs' in text
  assert '2 different files' in text
