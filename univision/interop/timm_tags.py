"""timm's MobileNetV4 pretrained tags and the pre-processing each expects.

A timm weight name is `<architecture>.<tag>`, e.g.
`mobilenetv4_conv_aa_large.e230_r448_in12k_ft_in1k`; each tag was trained
and is evaluated at its own resolution and crop, with ImageNet's or
Inception's mean and std, and has 1000 (ImageNet-1k) or 11,821
(ImageNet-12k) classes. `TAGS` holds every MobileNetV4 tag of timm's
pretrained configs (timm 1.0.31; `tests/interop/test_timm_tags.py` checks
each row against the installed timm), so a converted model is given its
tag's pre-processing and class count instead of one default per model.
"""
import dataclasses

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclasses.dataclass(frozen=True)
class Tag:
  """One timm pretrained weight and how its inputs are prepared."""
  architecture: str  # timm's, e.g. mobilenetv4_conv_small.
  tag: str  # e.g. e2400_r224_in1k.
  num_classes: int
  train_size: int  # Square input side it was trained at.
  test_size: int  # Square input side timm evaluates it at.
  crop_pct: float  # Centre crop at `train_size`.
  test_crop_pct: float  # Centre crop at `test_size`.
  mean: tuple[float, float, float]
  std: tuple[float, float, float]
  interpolation: str = 'bicubic'

  @property
  def name(self) -> str:
    return f'{self.architecture}.{self.tag}'

  @property
  def hub_id(self) -> str:
    """The Hugging Face repository of its weights."""
    return f'timm/{self.name}'


def _tag(architecture: str, tag: str, num_classes: int, train_size: int,
         test_size: int | None, crop_pct: float, test_crop_pct: float | None,
         normalization: tuple) -> Tag:
  return Tag(architecture, tag, num_classes, train_size,
             test_size or train_size, crop_pct,
             crop_pct if test_crop_pct is None else test_crop_pct,
             *normalization)


TAGS = {t.name: t for t in (
    _tag('mobilenetv4_conv_aa_large', 'e230_r384_in12k', 11821, 384, 448, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_aa_large', 'e230_r384_in12k_ft_in1k', 1000, 384, 480, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_aa_large', 'e230_r448_in12k_ft_in1k', 1000, 448, 544, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_aa_large', 'e600_r384_in1k', 1000, 384, 480, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_blur_medium', 'e500_r224_in1k', 1000, 224, 256, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_large', 'e500_r256_in1k', 1000, 256, 320, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_large', 'e600_r384_in1k', 1000, 384, 448, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e180_ad_r384_in12k', 11821, 384, None, 1.0, None, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e180_r384_in12k', 11821, 384, None, 1.0, None, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e250_r384_in12k', 11821, 384, None, 1.0, None, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e250_r384_in12k_ft_in1k', 1000, 384, None, 0.95, None, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e500_r224_in1k', 1000, 224, 256, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_medium', 'e500_r256_in1k', 1000, 256, 320, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_conv_small', 'e1200_r224_in1k', 1000, 224, 256, 0.875, 0.95, IMAGENET),
    _tag('mobilenetv4_conv_small', 'e2400_r224_in1k', 1000, 224, 256, 0.875, 0.95, IMAGENET),
    _tag('mobilenetv4_conv_small', 'e3600_r256_in1k', 1000, 256, 320, 0.95, 1.0, INCEPTION),
    _tag('mobilenetv4_conv_small_050', 'e3000_r224_in1k', 1000, 224, 256, 0.875, 0.95, INCEPTION),
    _tag('mobilenetv4_hybrid_large', 'e600_r384_in1k', 1000, 384, 448, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_large', 'ix_e600_r384_in1k', 1000, 384, 448, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_medium', 'e200_r256_in12k', 11821, 256, 320, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_medium', 'e200_r256_in12k_ft_in1k', 1000, 256, 320, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_medium', 'e500_r224_in1k', 1000, 224, 256, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_medium', 'ix_e550_r256_in1k', 1000, 256, 320, 0.95, 1.0, IMAGENET),
    _tag('mobilenetv4_hybrid_medium', 'ix_e550_r384_in1k', 1000, 384, 448, 0.95, 1.0, IMAGENET),
)}


def get_tag(name: str) -> Tag:
  """The tag of a full timm weight name.

  Raises:
    ValueError: for a name that is not `<architecture>.<tag>` of `TAGS`,
      listing the known tags of that architecture (or every one).
  """
  if name in TAGS:
    return TAGS[name]
  architecture = name.split('.')[0]
  known = [n for n in TAGS if n.startswith(architecture + '.')] or list(TAGS)
  raise ValueError(f'Unknown timm MobileNetV4 weights {name!r}; known: '
                   f'{", ".join(known)}.')
