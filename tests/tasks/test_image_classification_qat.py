"""QAT fine-tuning task and its export: float checkpoint in, int8 TFLite out."""
import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from univision import registry_imports  # pylint: disable=unused-import
from univision.core import config_parsing
from univision.quantization import edgetpu_check
from univision.quantization import tflite_ops
from univision.serving import tflite

_SIZE = 32


def _data_override(tfrecords: str) -> dict:
  return {'task': {
      'model': {'input_size': [_SIZE, _SIZE, 3]},
      'train_data': {'input_path': f'{tfrecords}/train-*',
                     'global_batch_size': 8},
      'validation_data': {'input_path': f'{tfrecords}/test-*',
                          'global_batch_size': 8}}}


def _float_checkpoint(folder, tfrecords, model_id='MobileNetV4ConvSmall'):
  params = exp_factory.get_exp_config('mnv4_fashion_mnist')
  params.override(_data_override(tfrecords))
  params.override({'task': {'model': {'backbone': {'mobilenet_v4': {
      'model_id': model_id}}}}})
  model = task_factory.get_task(params.task).build_model()
  model(np.zeros((1, _SIZE, _SIZE, 3), np.float32))
  return model, tf.train.Checkpoint(model=model).save(str(folder / 'ckpt'))


def _qat_params(tfrecords, checkpoint, **quantization):
  params = exp_factory.get_exp_config('mnv4_fashion_mnist_qat')
  params.override(_data_override(tfrecords))
  params.override({'task': {'quantization': {
      'pretrained_original_checkpoint': checkpoint, **quantization}}})
  return params


@pytest.fixture(scope='module')
def float_checkpoint(tmp_path_factory, fake_fmnist_tfrecords):
  return _float_checkpoint(tmp_path_factory.mktemp('float'),
                           fake_fmnist_tfrecords)


def test_qat_model_starts_from_the_float_checkpoint(float_checkpoint,
                                                    fake_fmnist_tfrecords):
  float_model, path = float_checkpoint
  params = _qat_params(fake_fmnist_tfrecords, path, calibration_steps=2)
  task = task_factory.get_task(params.task)
  qat_model = task.build_model()
  images = np.random.default_rng(0).normal(
      size=(4, _SIZE, _SIZE, 3)).astype(np.float32)
  np.testing.assert_allclose(
      task._flat_model(images).numpy(),  # pylint: disable=protected-access
      float_model(images, training=False).numpy(), atol=1e-4)
  ranges = [v for v in qat_model.weights if v.name.endswith('_max:0')]
  task.initialize(qat_model)  # No init_checkpoint: calibrates only.
  assert all(not np.all(v.numpy() == 6.0) for v in ranges)


def test_missing_float_checkpoint_names_the_key(tmp_path,
                                                fake_fmnist_tfrecords):
  params = _qat_params(fake_fmnist_tfrecords, str(tmp_path / 'nothing'))
  with pytest.raises(FileNotFoundError,
                     match='pretrained_original_checkpoint=.*nothing'):
    task_factory.get_task(params.task).build_model()


def test_checkpoint_of_another_model_is_refused(tmp_path,
                                                fake_fmnist_tfrecords):
  _, path = _float_checkpoint(tmp_path, fake_fmnist_tfrecords,
                              'MobileNetV4ConvMedium')
  params = _qat_params(fake_fmnist_tfrecords, path)
  with pytest.raises(ValueError, match='does not match the float model'):
    task_factory.get_task(params.task).build_model()


def test_unknown_op_set_names_the_key(float_checkpoint, fake_fmnist_tfrecords):
  params = _qat_params(fake_fmnist_tfrecords, float_checkpoint[1],
                       op_set='coral')
  with pytest.raises(ValueError, match="task.quantization.op_set='coral'"):
    task_factory.get_task(params.task).build_model()


@pytest.fixture(scope='module')
def qat_checkpoint(tmp_path_factory, float_checkpoint, fake_fmnist_tfrecords):
  """A calibrated QAT checkpoint as the QAT task's trainer would save it."""
  params = _qat_params(fake_fmnist_tfrecords, float_checkpoint[1],
                       calibration_steps=2)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)
  folder = tmp_path_factory.mktemp('qat')
  tf.train.Checkpoint(model=model).save(str(folder / 'ckpt'))
  override = (
      f"task.train_data.input_path='{fake_fmnist_tfrecords}/train-*',"
      f"task.validation_data.input_path='{fake_fmnist_tfrecords}/test-*',"
      f'task.model.input_size=[{_SIZE},{_SIZE},3],'
      f"task.quantization.pretrained_original_checkpoint='{float_checkpoint[1]}'")
  return dict(model=model, folder=str(folder), override=override)


@pytest.mark.parametrize('quant_type,io_dtype', [('qat', np.uint8),
                                                 ('qat_int8_io', np.int8)])
def test_qat_export_is_integer_only(qat_checkpoint, tmp_path, quant_type,
                                    io_dtype):
  path = tflite.export_tflite(
      'mnv4_fashion_mnist_qat', None, qat_checkpoint['override'],
      qat_checkpoint['folder'], str(tmp_path / 'export'),
      str(tmp_path / 'qat.tflite'), quant_type=quant_type)
  ops, problems = edgetpu_check.check(path)
  assert not problems, edgetpu_check.report(path, ops, problems)
  interpreter = tflite_ops.load_interpreter(path)
  assert interpreter.get_input_details()[0]['dtype'] == io_dtype
  assert {d['dtype'] for d in interpreter.get_output_details()} == {io_dtype}


def test_qat_types_need_a_qat_experiment(qat_checkpoint, tmp_path):
  with pytest.raises(ValueError, match='--quant_type=None: QAT types'):
    tflite.export_tflite(
        'mnv4_fashion_mnist_qat', None, qat_checkpoint['override'],
        qat_checkpoint['folder'], str(tmp_path / 'e'), str(tmp_path / 'a'))
  with pytest.raises(ValueError, match='is a float experiment'):
    tflite.export_tflite(
        'mnv4_fashion_mnist', None, '', qat_checkpoint['folder'],
        str(tmp_path / 'e'), str(tmp_path / 'b'), quant_type='qat')


def test_qat_saved_model_serves_the_qat_model(qat_checkpoint, tmp_path):
  from univision.serving import saved_model  # pylint: disable=g-import-not-at-top
  params = config_parsing.parse_experiment(
      'mnv4_fashion_mnist_qat', None, qat_checkpoint['override'])
  folder = saved_model.export_from_params(
      params, qat_checkpoint['folder'], str(tmp_path / 'sm'),
      input_type='tflite', batch_size=1)
  serve = tf.saved_model.load(folder).signatures['serving_default']
  image = np.random.default_rng(3).normal(
      size=(1, _SIZE, _SIZE, 3)).astype(np.float32)
  got = serve(inputs=tf.constant(image))['logits'].numpy()
  want = qat_checkpoint['model'](image, training=False).numpy()
  np.testing.assert_allclose(got, want, atol=1e-5)
