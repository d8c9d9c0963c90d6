"""Parts that several experiment factories assemble alike.

The runtimes (one CPU device in float32, or a TPU in bfloat16), the
restrictions every experiment checks, the Fashion-MNIST data configs of the
CPU recipes and the AdamW + linear warm-up + cosine optimizer config. The
recipes' values stay with the experiments; these functions only build the
configs from them.
"""
from typing import Any, Sequence

from official.core import config_definitions as cfg
from official.modeling import optimization
from official.vision.configs import image_classification as mg_ic

FASHION_MNIST_DIR = 'data/fashion_mnist'  # `univision.data.fashion_mnist`.


def cpu_runtime() -> cfg.RuntimeConfig:
  """One CPU device, float32: the runtime of the CPU-sized recipes."""
  return cfg.RuntimeConfig(distribution_strategy='one_device', num_gpus=0,
                           mixed_precision_dtype='float32')


def tpu_runtime() -> cfg.RuntimeConfig:
  """A TPU (pod slice), bfloat16: the runtime of the full-scale recipes."""
  return cfg.RuntimeConfig(distribution_strategy='tpu',
                           mixed_precision_dtype='bfloat16')


def restrictions() -> list[str]:
  """The restrictions of every experiment: both data configs set training."""
  return ['task.train_data.is_training != None',
          'task.validation_data.is_training != None']


def fashion_mnist_data(
    crop_area_range: Sequence[float] = (0.5, 1.0),
    tf_resize_method: str = 'bilinear',
    train_files: str = 'train-*') -> dict[str, mg_ic.DataConfig]:
  """`train_data` and `validation_data` on the Fashion-MNIST TFRecords.

  The records are PNGs (`decode_jpeg_only=False`). Training: batches of 64,
  random crops of `crop_area_range` of the area and flips. Validation: all
  of `test-*` in batches of 200, whole images, no flip.

  Args:
    crop_area_range: (min, max) fraction of the image area a training crop
      keeps.
    tf_resize_method: A `str` resize method of both splits.
    train_files: The training file pattern in `FASHION_MNIST_DIR` (e.g. one
      shard).

  Returns:
    A dict of the two data configs, by their task config field names.
  """
  return dict(
      train_data=mg_ic.DataConfig(
          input_path=f'{FASHION_MNIST_DIR}/{train_files}', is_training=True,
          global_batch_size=64, decode_jpeg_only=False,
          crop_area_range=tuple(crop_area_range),
          tf_resize_method=tf_resize_method),
      validation_data=mg_ic.DataConfig(
          input_path=f'{FASHION_MNIST_DIR}/test-*', is_training=False,
          global_batch_size=200, decode_jpeg_only=False,
          aug_rand_hflip=False, center_crop_fraction=1.0,
          tf_resize_method=tf_resize_method, drop_remainder=False))


def adamw_warmup_cosine(learning_rate: float, steps: int, warmup_steps: int,
                        decay_after_warmup: bool = False,
                        **adamw: Any) -> optimization.OptimizationConfig:
  """AdamW, a linear warm-up from 0, then a cosine decay to 0.

  Args:
    learning_rate: A `float` peak learning rate.
    steps: An `int` number of training steps.
    warmup_steps: An `int` number of warm-up steps.
    decay_after_warmup: A `bool`; if True the cosine runs over the steps
      after the warm-up (MAE's `util/lr_sched.py`), else over all `steps`
      with the warm-up in place of its start.
    **adamw: Fields of Model Garden's AdamW config (`weight_decay_rate`,
      `exclude_from_weight_decay`, betas, ...); unset ones keep its defaults.

  Returns:
    The optimization config.
  """
  cosine = {'initial_learning_rate': learning_rate, 'decay_steps': steps}
  if decay_after_warmup:
    cosine.update(decay_steps=steps - warmup_steps, offset=warmup_steps)
  return optimization.OptimizationConfig({
      'optimizer': {'type': 'adamw', 'adamw': adamw},
      'learning_rate': {'type': 'cosine', 'cosine': cosine},
      'warmup': {'type': 'linear',
                 'linear': {'warmup_steps': warmup_steps}},
  })
