"""Experiment names from YAML recipes."""
import pytest

from univision.core import config_parsing


def test_experiment_of_reads_the_first_line(tmp_path):
  path = tmp_path / 'recipe.yaml'
  path.write_text('# --experiment=mnv4_fashion_mnist\ntask: {}\n')
  assert config_parsing.experiment_of(str(path)) == 'mnv4_fashion_mnist'


def test_experiment_of_names_a_file_without_it(tmp_path):
  path = tmp_path / 'recipe.yaml'
  path.write_text('task: {}\n# --experiment=mnv4_fashion_mnist\n')
  with pytest.raises(ValueError, match=rf'{path}: the first line must be'):
    config_parsing.experiment_of(str(path))
