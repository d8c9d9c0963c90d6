"""Post-training int8 through the QAT graph: export, determinism, bad input."""
import os
import shutil

import numpy as np
import pytest
import tf_keras
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.data import tfrecords
from univision.quantization import edgetpu_check
from univision.quantization import ptq
from univision.quantization import readiness
from univision.quantization import tflite_ops
from univision.serving import tflite


@pytest.fixture(name='checkpoint', scope='module')
def _checkpoint(classifier_checkpoint):
  return classifier_checkpoint


_CALIBRATION = ptq.Calibration(images=16, batch_size=8)


def _export(checkpoint, tmp_path, name, quant_type='ptq',
            calibration=_CALIBRATION):
  return tflite.export_tflite(
      'mnv4_fashion_mnist', None, checkpoint['override'], checkpoint['path'],
      str(tmp_path / 'export'), str(tmp_path / name), quant_type=quant_type,
      calibration=calibration)


def test_export_is_integer_only_serves_probs_and_repeats_bytes(checkpoint,
                                                               tmp_path):
  # Each export as in a fresh process: Keras numbers unnamed layers per
  # process, and the numbers are in the file's tensor names.
  tf_keras.backend.clear_session()
  path = _export(checkpoint, tmp_path, 'a.tflite', 'ptq_int8_io')
  tf_keras.backend.clear_session()
  again = _export(checkpoint, tmp_path, 'b.tflite', 'ptq_int8_io')
  with open(path, 'rb') as a, open(again, 'rb') as b:
    assert a.read() == b.read()
  ops = tflite_ops.list_ops(path)
  assert not [op for op in ops if op.is_float]
  assert all(op.at_boundary for op in ops
             if op.name in ('QUANTIZE', 'DEQUANTIZE'))
  runner = tflite_ops.load_interpreter(path).get_signature_runner()
  outputs = runner.get_output_details()
  assert set(outputs) == {'logits', 'probs'}
  (name, details), = runner.get_input_details().items()
  assert details['dtype'] == np.int8  # ptq (uint8): test_ptq_report.py
  images = np.random.default_rng(1).normal(size=(6, 32, 32, 3)).astype(
      np.float32)
  got = np.concatenate([tflite_ops.dequantize_output(
      runner(**{name: tflite_ops.quantize_input(image[None], details)})[
          'logits'], outputs['logits']) for image in images])
  want = checkpoint['model'](images, training=False).numpy()
  assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9


def test_a_hybrid_is_edge_tpu_ready_after_ptq(tmp_path):
  result = readiness.check_model('MobileNetV4HybridMedium', 32, 'edgetpu',
                                 str(tmp_path), method='ptq')
  assert result.num_float_ops == 0 and not result.problems
  ops, problems = edgetpu_check.check(result.tflite_path)
  assert not problems and 'BATCH_MATMUL' not in {op.name for op in ops}
  assert result.logits_correlation > 0.8


def _params(checkpoint):
  return config_parsing.parse_experiment('mnv4_fashion_mnist', None,
                                         checkpoint['override'])


def _batches(checkpoint, **settings):
  params = _params(checkpoint)
  return ptq.calibration_batches(
      params, task_factory.get_task(params.task),
      ptq.Calibration(**{'images': 20, 'batch_size': 8, **settings}))


def test_calibration_reads_the_first_images_unaugmented(checkpoint):
  batches = _batches(checkpoint)
  assert [len(b) for b in batches] == [8, 8, 4]
  again = _batches(checkpoint)
  for a, b in zip(batches, again):
    np.testing.assert_array_equal(a, b)


def _write_images(folder, size, count=4, prefix='calibration'):
  os.makedirs(folder, exist_ok=True)
  images = np.zeros([count, size, size], np.uint8)
  return tfrecords.write_classification_tfrecords(
      images, np.zeros([count], np.int64), os.path.join(folder, prefix), 1,
      source_prefix='made_here')


def test_bad_calibration_data_is_named(checkpoint, tmp_path):
  data = checkpoint['data']
  with pytest.raises(ValueError, match='nothing-\\*.*no file matches'):
    _batches(checkpoint, data=str(tmp_path / 'nothing-*'))
  with pytest.raises(ValueError, match='is the split the model is evaluated'):
    _batches(checkpoint, data=f'{data}/test-*')
  shutil.copy(f'{data}/train-00000-of-00008.tfrecord', tmp_path / 'test-0')
  with pytest.raises(ValueError, match='test split'):
    _batches(checkpoint, data=str(tmp_path / 'test-*'))
  _write_images(str(tmp_path / 'small'), 20)
  with pytest.raises(ValueError, match='holds 20x20 images; the training '
                     'split .* holds 28x28'):
    _batches(checkpoint, data=str(tmp_path / 'small' / 'calibration*'))
  (tmp_path / 'empty.tfrecord').write_bytes(b'')
  with pytest.raises(ValueError, match='empty.tfrecord: holds no record'):
    _batches(checkpoint, data=str(tmp_path / 'empty.tfrecord'))


def test_other_calibration_images_of_the_same_size_are_taken(checkpoint,
                                                              tmp_path):
  _write_images(str(tmp_path / 'val'), 28, count=5)
  batches = _batches(checkpoint, data=str(tmp_path / 'val' / 'calibration*'))
  assert sum(len(b) for b in batches) == 5


def test_ptq_needs_a_float_classifier(checkpoint, tmp_path):
  with pytest.raises(ValueError, match='go with a QAT experiment'):
    tflite.export_tflite(
        'mnv4_fashion_mnist_qat', None, checkpoint['override'],
        checkpoint['path'], str(tmp_path / 'e'), str(tmp_path / 'q.tflite'),
        quant_type='ptq')
  with pytest.raises(ValueError, match='float image classification'):
    tflite.export_tflite(
        'mnv4_retinanet_composites', None, '', checkpoint['path'],
        str(tmp_path / 'e'), str(tmp_path / 'r.tflite'), quant_type='ptq')
