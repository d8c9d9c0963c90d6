"""Detector export: one SavedModel / TFLite per task from base + patch."""
import numpy as np
import pytest
import tensorflow as tf, tf_keras
from official.core import exp_factory
from official.core import task_factory

from tests import conftest
from univision import registry_imports  # pylint: disable=unused-import
from univision.modeling import patches
from univision.quantization import tflite_ops
from univision.serving import saved_model
from univision.serving import tflite

PATCH = 'bn+predictor'


def _params(composites):
  params = exp_factory.get_exp_config('mnv4_retinanet_composites_patch')
  # Score thresholds 0: an untrained detector's scores (~0.01) still show.
  params.override({'task': {
      'patch': PATCH,
      'model': {'input_size': [64, 64, 3], 'head': conftest.SMALL_HEAD,
                'detection_generator': {
          'pre_nms_score_threshold': 0.0,
          'tflite_post_processing': {'nms_score_threshold': 0.0}}},
      'train_data': {'input_path': f'{composites}/train-*',
                     'global_batch_size': 4},
      'validation_data': {'input_path': f'{composites}/val-*'}}})
  return params


@pytest.fixture(scope='module')
def base_and_patch(tmp_path_factory, composites):
  """A base checkpoint, a patch trained on it, the fine-tuned checkpoint."""
  folder = tmp_path_factory.mktemp('detector')
  params = _params(composites)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  base_scores = model(batch[0], training=False)['detection_scores']
  base = tf.train.Checkpoint(model=model).save(str(folder / 'base' / 'ckpt'))
  for _ in range(3):
    task.train_step(batch, model, tf_keras.optimizers.SGD(0.2),
                    metrics=task.build_metrics(training=True))
  patch = patches.save(model, PATCH, str(folder / 'task.npz'))
  tuned = tf.train.Checkpoint(model=model).save(str(folder / 'tuned' / 'ckpt'))
  return dict(params=params, base=base, patch=patch, tuned=tuned,
              image=np.asarray(batch[0][:1]), base_scores=base_scores,
              tuned_scores=model(batch[0], training=False)['detection_scores'])


def _serve(params, checkpoint, export_dir, patch=None):
  path = saved_model.export_from_params(
      params, checkpoint, str(export_dir), input_type='image_tensor',
      batch_size=1, patch_path=patch)
  return tf.saved_model.load(path).signatures['serving_default']


def test_base_plus_patch_saved_model_equals_the_fine_tuned(base_and_patch,
                                                           tmp_path):
  b = base_and_patch
  image = tf.constant(np.random.default_rng(0).integers(
      0, 255, (1, 64, 64, 3)), tf.uint8)
  patched = _serve(b['params'], b['base'], tmp_path / 'patched',
                   b['patch'])(inputs=image)
  tuned = _serve(b['params'], b['tuned'], tmp_path / 'tuned')(inputs=image)
  for key in ('detection_scores', 'detection_boxes', 'detection_classes'):
    np.testing.assert_allclose(patched[key], tuned[key], rtol=1e-5,
                               atol=1e-5, err_msg=key)
  assert tuned['detection_scores'].numpy().min() > 0
  # The patch changed the detector: the SavedModel serves the patched
  # weights, not the base's.
  assert not np.allclose(b['base_scores'], b['tuned_scores'])


def _tflite_outputs(path, image):
  interpreter = tflite_ops.load_interpreter(path)
  interpreter.allocate_tensors()
  interpreter.set_tensor(interpreter.get_input_details()[0]['index'], image)
  interpreter.invoke()
  return sorted((interpreter.get_tensor(o['index'])
                 for o in interpreter.get_output_details()),
                key=lambda a: (a.shape, float(a.sum())))


def test_base_plus_patch_tflite_equals_the_fine_tuned(base_and_patch,
                                                      tmp_path):
  b = base_and_patch
  files = {}
  for name, checkpoint, patch in (('patched', b['base'], b['patch']),
                                  ('tuned', b['tuned'], None)):
    files[name] = tflite.export_tflite(
        'mnv4_retinanet_composites_patch', None,
        _override(b['params']), checkpoint,
        str(tmp_path / name), str(tmp_path / f'{name}.tflite'),
        patch_path=patch)
  image = b['image'].astype(np.float32)
  got = _tflite_outputs(files['patched'], image)
  want = _tflite_outputs(files['tuned'], image)
  assert max(a.size for a in want) > 4  # Detections, not an empty list.
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def _override(params) -> str:
  data = params.task
  return (f"task.patch='{PATCH}',task.model.input_size=[64,64,3],"
          f'{conftest.SMALL_HEAD_OVERRIDE},'
          'task.model.detection_generator.pre_nms_score_threshold=0.0,'
          'task.model.detection_generator.tflite_post_processing.'
          'nms_score_threshold=0.0,'
          f"task.train_data.input_path='{data.train_data.input_path}',"
          f"task.validation_data.input_path="
          f"'{data.validation_data.input_path}'")


def test_patch_for_another_model_is_refused_at_export(base_and_patch,
                                                      tmp_path):
  b = base_and_patch
  params = _params(b['params'].task.train_data.input_path.rsplit('/', 1)[0])
  params.override({'task': {'model': {'backbone': {'mobilenet_v4': {
      'model_id': 'MobileNetV4ConvMedium'}}}}})
  other = task_factory.get_task(params.task).build_model()
  other(tf.zeros([1, 64, 64, 3]), training=False)
  wrong = patches.save(other, PATCH, str(tmp_path / 'medium.npz'))
  with pytest.raises(ValueError, match='medium.npz'):
    saved_model.export_from_params(b['params'], b['base'],
                                   str(tmp_path / 'out'), patch_path=wrong)
