"""The tag table agrees with the installed timm's pretrained configs."""
import pytest

from univision.interop import timm_mobilenet_v4 as timm_weights
from univision.interop import timm_tags


def test_every_timm_mobilenet_v4_tag_with_its_preprocessing():
  import timm  # pylint: disable=g-import-not-at-top
  from timm.models import get_pretrained_cfg  # pylint: disable=g-import-not-at-top
  assert set(timm_tags.TAGS) == set(timm.list_pretrained('mobilenetv4*'))
  for name, tag in timm_tags.TAGS.items():
    cfg = get_pretrained_cfg(name).to_dict()
    test_size = (cfg.get('test_input_size') or cfg['input_size'])[1]
    test_crop = cfg.get('test_crop_pct') or cfg['crop_pct']
    assert (tag.num_classes, tag.train_size, tag.test_size, tag.crop_pct,
            tag.test_crop_pct, tag.interpolation) == (
                cfg['num_classes'], cfg['input_size'][1], test_size,
                cfg['crop_pct'], test_crop, cfg['interpolation']), name
    assert tag.mean == pytest.approx(cfg['mean'], abs=1e-6), name
    assert tag.std == pytest.approx(cfg['std'], abs=1e-6), name
    assert tag.hub_id == cfg['hf_hub_id']
    # Every tagged architecture converts.
    assert timm_weights.resolve_model_id(name) in timm_weights.TIMM_NAMES \
        .values()


def test_default_weights_are_known_tags():
  for model_id, hub_id in timm_weights.TIMM_HUB_WEIGHTS.items():
    tag = timm_tags.get_tag(hub_id.removeprefix('timm/'))
    assert timm_weights.TIMM_NAMES[tag.architecture] == model_id


def test_unknown_tag_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"'mobilenetv4_conv_small\.e9_r1'"
                     r'; known: .*mobilenetv4_conv_small\.e2400_r224_in1k'):
    timm_weights.resolve_model_id('mobilenetv4_conv_small.e9_r1')
  assert timm_tags.get_tag('mobilenetv4_conv_aa_large.e230_r448_in12k_ft_in1k'
                           ).test_size == 544
  assert timm_tags.get_tag('mobilenetv4_conv_medium.e250_r384_in12k'
                           ).num_classes == 11821
