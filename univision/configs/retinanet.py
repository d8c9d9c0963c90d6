"""RetinaNet detection configs and experiments with MobileNetV4 backbones.

The task, data, anchor, head and loss configs are Model Garden's; the model
config changes only so that `backbone.type` can be `mobilenet_v4`, and Model
Garden's `RetinaNetTask` is registered for it. Composite tasks are written
by `python -m univision.data.detection_composites`.
"""
import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.modeling import optimization
from official.vision.configs import decoders
from official.vision.configs import retinanet as mg_retinanet
from official.vision.tasks import retinanet as mg_retinanet_task

from univision.configs import backbones


@dataclasses.dataclass
class RetinaNet(mg_retinanet.RetinaNet):
  """Model Garden's RetinaNet model config with univision backbones."""
  backbone: backbones.Backbone = dataclasses.field(
      default_factory=lambda: backbones.Backbone(type='mobilenet_v4'))


@dataclasses.dataclass
class RetinaNetTask(mg_retinanet.RetinaNetTask):
  """Model Garden's RetinaNet task config with univision models."""
  model: RetinaNet = dataclasses.field(default_factory=RetinaNet)


task_factory.register_task_cls(RetinaNetTask)(mg_retinanet_task.RetinaNetTask)


@dataclasses.dataclass
class PatchedRetinaNetTask(RetinaNetTask):
  """RetinaNet training only a model patch of a shared base.

  Attributes:
    patch: Patch kinds joined by '+' (`univision.modeling.patches.KINDS`):
      only these variables train; everything else stays as loaded from
      `init_checkpoint` (the shared base).
  """
  patch: str = 'bn+head'


@exp_factory.register_config_factory('mnv4_retinanet_composites')
def mnv4_retinanet_composites() -> cfg.ExperimentConfig:
  """MNv4-Conv-S RetinaNet + FPN (levels 3-5) on one composite task, on CPU.

  128x128 images; labels 1..K of the task (K <= 4, `num_classes` counts the
  background). Point `input_path`s at another task's folder to switch.
  """
  steps = 3000
  folder = 'data/composites/tops_on_photos'
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(distribution_strategy='one_device',
                                num_gpus=0, mixed_precision_dtype='float32'),
      task=RetinaNetTask(
          model=RetinaNet(
              num_classes=5, input_size=[128, 128, 3], min_level=3,
              max_level=5,
              backbone=backbones.Backbone(
                  type='mobilenet_v4',
                  mobilenet_v4=backbones.MobileNetV4(include_head=False)),
              decoder=decoders.Decoder(type='fpn', fpn=decoders.FPN())),
          losses=mg_retinanet.Losses(l2_weight_decay=0.0),
          train_data=mg_retinanet.DataConfig(
              input_path=f'{folder}/train-*', is_training=True,
              global_batch_size=16,
              parser=mg_retinanet.Parser(aug_rand_hflip=True,
                                         aug_scale_min=0.8,
                                         aug_scale_max=1.2)),
          validation_data=mg_retinanet.DataConfig(
              input_path=f'{folder}/val-*', is_training=False,
              global_batch_size=8, drop_remainder=False),
          annotation_file=None),
      trainer=cfg.TrainerConfig(
          train_steps=steps, validation_steps=25, validation_interval=steps,
          steps_per_loop=100, summary_interval=100, checkpoint_interval=1000,
          optimizer_config=optimization.OptimizationConfig({
              'optimizer': {'type': 'adamw',
                            'adamw': {'weight_decay_rate': 0.01}},
              'learning_rate': {'type': 'cosine',
                                'cosine': {'initial_learning_rate': 0.002,
                                           'decay_steps': steps}},
              'warmup': {'type': 'linear',
                         'linear': {'warmup_steps': 200}},
          })),
      restrictions=['task.train_data.is_training != None',
                    'task.validation_data.is_training != None'])


@exp_factory.register_config_factory('mnv4_retinanet_composites_patch')
def mnv4_retinanet_composites_patch() -> cfg.ExperimentConfig:
  """`mnv4_retinanet_composites` training only a patch of a shared base.

  Set `task.init_checkpoint` to the shared base detector's checkpoint
  (`init_checkpoint_modules: all`) and `task.patch` to the patch kinds.
  """
  config = mnv4_retinanet_composites()
  config.task = PatchedRetinaNetTask(**config.task.as_dict())
  config.task.init_checkpoint_modules = 'all'
  return config
