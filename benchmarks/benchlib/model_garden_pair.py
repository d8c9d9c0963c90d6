"""Our MobileNetV4 classifier and Model Garden's, on the same weights.

Model Garden's classifier is `official.vision`'s `ClassificationModel` on
its own `mobilenet` backbone (`official.vision.modeling.backbones.mobilenet`)
with the same model id; ours is `univision.efficiency.report.classifier`
(the same `ClassificationModel` on our backbone, padding 'same' and Model
Garden's BN epsilon). Model Garden's weights are randomized (BN statistics,
affine and layer scales, so no block is an identity) and copied into ours
with `univision.interop.model_garden`, so every later speed comparison is
between two implementations of one function, checked by their logits.
"""
import numpy as np
import tensorflow as tf, tf_keras
from official.vision.modeling import classification_model
from official.vision.modeling.backbones import mobilenet as mg_mobilenet

from univision.efficiency import report
from univision.interop import model_garden

NUM_CLASSES = 1000


def model_garden_ids(model_ids) -> list[str]:
  """The ids of `model_ids` that Model Garden's MobileNet backbone builds.

  Ours has more (timm's narrow and anti-aliased variants); Model Garden
  has the five of the paper.
  """
  return [m for m in model_ids if m in mg_mobilenet.SUPPORTED_SPECS_MAP]


def model_garden_classifier(model_id: str) -> tf_keras.Model:
  """Model Garden's own MNv4 classifier with 1000 classes."""
  return classification_model.ClassificationModel(
      mg_mobilenet.MobileNet(model_id=model_id), NUM_CLASSES)


def _randomize(model: tf_keras.Model, seed: int) -> None:
  """Non-trivial BN statistics, BN affine and layer scales."""
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    name = variable.name
    if 'moving_variance' in name:
      value = rng.uniform(0.5, 1.5, variable.shape)
    elif 'moving_mean' in name or 'beta' in name:
      value = rng.uniform(-0.1, 0.1, variable.shape)
    elif 'gamma' in name or 'layer_scale' in name:
      value = rng.uniform(0.5, 1.0, variable.shape)
    else:
      continue
    variable.assign(value.astype(np.float32))


def _copy_head(source: tf_keras.Model, target: tf_keras.Model) -> None:
  """Copies the layers after the backbone (pooling, dropout, dense)."""
  src = [l for l in source.layers if l is not source.backbone and l.weights]
  dst = [l for l in target.layers if l is not target.backbone and l.weights]
  if len(src) != len(dst):
    raise ValueError(f'Heads differ: {len(src)} vs {len(dst)} layers with '
                     'weights.')
  for s, d in zip(src, dst):
    d.set_weights(s.get_weights())


def build_pair(model_id: str, resolution: int, seed: int = 0
               ) -> tuple[tf_keras.Model, tf_keras.Model, float]:
  """(ours, Model Garden's, max |logit difference| / max |logit|).

  Args:
    model_id: A MobileNetV4 model id known to both.
    resolution: Square input size of the equivalence check (Model Garden's
      Mobile MQA needs square maps).
    seed: Seed of the weights and of the check's image.
  """
  tf_keras.utils.set_random_seed(seed)
  theirs = model_garden_classifier(model_id)
  _randomize(theirs, seed)
  ours = report.classifier(model_id)
  model_garden.copy_model_garden_weights(theirs.backbone, ours.backbone)
  _copy_head(theirs, ours)
  image = tf.random.stateless_normal([1, resolution, resolution, 3],
                                     seed=[seed, 1])
  want = theirs(image, training=False).numpy()
  got = ours(image, training=False).numpy()
  scale = float(np.max(np.abs(want))) or 1.0
  return ours, theirs, float(np.max(np.abs(got - want))) / scale
