"""Importing this module registers every univision backbone, task and experiment.

It also registers all of Model Garden's vision components, so a binary needs
only this import.
"""
# pylint: disable=unused-import
from official.vision import registry_imports as _mg_registry_imports

from univision.configs import distillation as _distillation_configs
from univision.configs import hiera_classification as _hiera_ic_configs
from univision.configs import image_classification as _ic_configs
from univision.configs import image_classification_qat as _ic_qat_configs
from univision.configs import maws as _maws_configs
from univision.configs import query_retinanet as _query_retinanet_configs
from univision.configs import retinanet as _retinanet_configs
from univision.configs import wsol as _wsol_configs
from univision.modeling.backbones import hiera as _hiera
from univision.modeling.backbones import mobilenet_v4 as _mobilenet_v4
from univision.modeling.backbones import vit_mae as _vit_mae
from univision.modeling.decoders import ssdlite as _ssdlite
from univision.tasks import distillation as _distillation_task
from univision.tasks import image_classification as _ic_task
from univision.tasks import image_classification_qat as _ic_qat_task
from univision.tasks import mae as _mae_task
from univision.tasks import patched_retinanet as _patched_retinanet_task
from univision.tasks import query_retinanet as _query_retinanet_task
from univision.tasks import spot_patched_retinanet as _spot_task
from univision.tasks import maws_weak_classification as _maws_weak_task
from univision.tasks import wsol as _wsol_task
