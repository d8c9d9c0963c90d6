"""timm MobileNetV4 models with random but realistic weights, for tests."""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # pylint: disable=g-import-not-at-top
import timm  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top
from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top


def random_timm_model(name: str, resolution: int, seed: int = 0, **kwargs):
  """A timm model in eval mode with randomized weights.

  `kwargs` go to `timm.create_model` (e.g. `num_classes`).

  Layer scales and BN affine parameters are randomized (at init a hybrid
  block is almost the identity), and BN statistics are measured on random
  images so activations keep a trained network's scale.
  """
  torch.manual_seed(seed)
  model = timm.create_model(name, pretrained=False, **kwargs)
  with torch.no_grad():
    for param_name, param in model.named_parameters():
      if param_name.endswith('gamma'):
        param.uniform_(0.5, 1.5)
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.uniform_(0.7, 1.3)
        module.bias.uniform_(-0.1, 0.1)
        module.reset_running_stats()
        module.momentum = None  # Cumulative average.
    model.train()
    for _ in range(2):
      model(torch.randn(4, 3, resolution, resolution))
  return model.eval()


def save_safetensors(model, path: str) -> str:
  save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
  return path


def timm_logits(model, images_nhwc: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(torch.from_numpy(images_nhwc.transpose(0, 3, 1, 2))).numpy()


def go_offline(monkeypatch) -> None:
  """Makes `huggingface_hub.hf_hub_download` fail as it does offline."""
  import sys  # pylint: disable=g-import-not-at-top
  import types  # pylint: disable=g-import-not-at-top

  def offline(repo, name):
    raise FileNotFoundError(f'LocalEntryNotFoundError: {repo}/{name}: cannot '
                            'reach the Hub')
  monkeypatch.setitem(sys.modules, 'huggingface_hub',
                      types.SimpleNamespace(hf_hub_download=offline))
