"""The flat graph computes what the layered float model computes."""
import string

import numpy as np
import pytest
import tf_keras

from univision.quantization import readiness
from univision.modeling.backbones import mobilenet_v4_specs
from univision.quantization import flat_graph
from univision.quantization import qat_layers

_SIZE = 32
# One model per layer table: a width variant (its parent's id and its
# multiplier, e.g. ...Large075) has its parent's layers with fewer channels.
_ARCHITECTURES = sorted(
    m for m in mobilenet_v4_specs.MODEL_SPECS
    if m.rstrip(string.digits) == m
    or m.rstrip(string.digits) not in mobilenet_v4_specs.MODEL_SPECS)


def _relative_error(got, want):
  return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize('model_id', _ARCHITECTURES)
def test_flat_graphs_compute_what_the_float_model_computes(model_id):
  model = readiness.random_classifier(model_id, _SIZE)
  images = readiness.random_images(4, _SIZE)
  # The 'tflite' op set: every backbone endpoint, exactly.
  inputs = tf_keras.Input((_SIZE, _SIZE, 3))
  flat = tf_keras.Model(inputs, flat_graph.flat_backbone(
      model.backbone, inputs, op_set='tflite'))
  want = model.backbone(images, training=False)
  got = flat(images)
  assert sorted(got) == sorted(want) == ['2', '3', '4', '5', '6']
  for level in want:
    assert _relative_error(got[level].numpy(), want[level].numpy()) < 1e-4, (
        level)
  # The 'edgetpu' op set: the classifier, exactly except for GELU; no
  # batch matmul, batch norm folded.
  flat = flat_graph.flat_classifier(model, (_SIZE, _SIZE), op_set='edgetpu')
  error = _relative_error(flat(images).numpy(),
                          model(images, training=False).numpy())
  if mobilenet_v4_specs.MODEL_SPECS[model_id].activation == 'gelu':
    assert error > 1e-4  # x * sigmoid(1.702 x) is not GELU (next test).
  else:
    assert error < 1e-4
  layer_types = {type(layer) for layer in flat.layers}
  assert qat_layers.BatchMatMul not in layer_types
  assert not any(isinstance(layer, tf_keras.layers.BatchNormalization)
                 for layer in flat.layers)


def test_edgetpu_gelu_is_within_0_021_of_gelu():
  inputs = tf_keras.Input((1,))
  flattener = flat_graph._Flattener('edgetpu')  # pylint: disable=protected-access
  approx = tf_keras.Model(inputs, flattener.activation('gelu', inputs, 'act'))
  x = np.linspace(-8, 8, 4001, dtype=np.float32)[:, None]
  error = np.abs(approx(x).numpy() - tf_keras.activations.gelu(x).numpy())
  assert 0.01 < error.max() < 0.021


@pytest.fixture(scope='module')
def hybrid_medium():
  return readiness.random_classifier('MobileNetV4HybridMedium', _SIZE)


def test_tflite_op_set_uses_batch_matmul_for_attention(hybrid_medium):
  model = hybrid_medium
  flat = flat_graph.flat_classifier(model, (_SIZE, _SIZE), op_set='tflite')
  matmuls = [l for l in flat.layers if isinstance(l, qat_layers.BatchMatMul)]
  mqa_blocks = [b for b in model.backbone.model_spec.blocks
                if b.block == 'mqa']
  assert len(matmuls) == 2 * len(mqa_blocks)


def test_flat_graph_needs_a_fixed_size(hybrid_medium):
  inputs = tf_keras.Input((None, None, 3))
  with pytest.raises(ValueError, match='mqa: the flat graph needs a fixed'):
    flat_graph.flat_backbone(hybrid_medium.backbone, inputs)


def test_unknown_op_set_is_named():
  model = readiness.random_classifier('MobileNetV4ConvSmall', _SIZE)
  with pytest.raises(ValueError, match="op_set='coral' is not one of"):
    flat_graph.flat_classifier(model, (_SIZE, _SIZE), op_set='coral')


def test_non_mobilenet_v4_backbone_is_refused():
  from official.vision.modeling import classification_model  # pylint: disable=g-import-not-at-top
  from official.vision.modeling.backbones import resnet  # pylint: disable=g-import-not-at-top
  model = classification_model.ClassificationModel(
      resnet.ResNet(18), 10)
  with pytest.raises(TypeError, match='needs a MobileNetV4 backbone'):
    flat_graph.flat_classifier(model, (_SIZE, _SIZE))
