"""Experiment parsing with errors that name the file and the full key.

Model Garden's parser reports an unknown override key as "The key 'x' does
not exist" without saying which file or where in the tree; this one names
both, and lists the registered experiments when `--experiment` is unknown.
"""
import types
from collections.abc import Mapping
from typing import Any

import tensorflow as tf, tf_keras
import yaml
from official.core import exp_factory
from official.core import train_utils
from official.modeling import hyperparams
from official.modeling.hyperparams import params_dict


def unknown_keys(params: Mapping[str, Any], override: Mapping[str, Any],
                 prefix: str = '') -> list[str]:
  """Dotted paths of keys in `override` that `params` does not have.

  Args:
    params: A nested dict of the existing config (`Config.as_dict()`).
    override: A nested dict of overrides.
    prefix: The dotted path of `params` in the whole config.

  Returns:
    The dotted paths of unknown keys. Below a key whose current value is not
    a dict (e.g. an optional sub-config that is None) nothing is checked,
    because Model Garden fills such keys from their types.
  """
  found = []
  for key, value in override.items():
    path = f'{prefix}{key}'
    if key not in params:
      found.append(path)
    elif isinstance(value, Mapping) and isinstance(params[key], Mapping):
      found.extend(unknown_keys(params[key], value, path + '.'))
  return found


def _override(params: hyperparams.Config, source: str, override: Any,
              what: str) -> hyperparams.Config:
  """Applies one strict override, re-raising errors that name `what`."""
  try:
    return hyperparams.override_params_dict(params, source, is_strict=True)
  except (KeyError, AttributeError, ValueError, TypeError) as e:
    if isinstance(override, Mapping):
      bad = unknown_keys(params.as_dict(), override)
      if bad:
        raise ValueError(f'{what}: unknown config key(s): {", ".join(bad)}.'
                         ) from None
    raise ValueError(f'{what}: {e}') from e


def _override_dict(text: str) -> Any:
  """`--params_override` as a dict: a YAML file, YAML/JSON, or `a.b=1,c=2`."""
  if tf.io.gfile.exists(text):
    with tf.io.gfile.GFile(text) as f:
      return yaml.safe_load(f)
  try:
    text = params_dict.nested_csv_str_to_json_str(text)
  except ValueError:
    pass  # Not the CSV form: YAML or JSON.
  try:
    return yaml.safe_load(text)
  except yaml.YAMLError:
    return None


def apply_override(params: hyperparams.Config, text: str,
                   what: str = '--params_override') -> hyperparams.Config:
  """Applies a strict YAML/JSON/`a.b=c` override; errors name `what` + key."""
  return _override(params, text, _override_dict(text), what)


class ExperimentParser(train_utils.ExperimentParser):
  """Model Garden's experiment parser with errors naming file and key."""

  def base_experiment(self):
    name = self._flags_obj.experiment
    try:
      return exp_factory.get_exp_config(name)
    except (KeyError, LookupError) as e:
      known = sorted(exp_factory._REGISTERED_CONFIGS)  # pylint: disable=protected-access
      raise ValueError(f'--experiment={name!r} is not registered; registered '
                       f'experiments: {", ".join(known)}.') from e

  def parse_data_service(self, params):
    # Model Garden tests `'tf_data_service' in flags`, which only absl flags
    # support; export.py and tests pass a plain namespace without it.
    if not getattr(self._flags_obj, 'tf_data_service', None):
      return params
    return super().parse_data_service(params)

  def parse_config_file(self, params):
    for config_file in self._flags_obj.config_file or []:
      if not tf.io.gfile.exists(config_file):
        raise FileNotFoundError(f'--config_file={config_file} does not exist.')
      with tf.io.gfile.GFile(config_file) as f:
        try:
          override = yaml.safe_load(f)
        except yaml.YAMLError as e:
          raise ValueError(f'{config_file}: not valid YAML ({e}).') from e
      params = _override(params, config_file, override, config_file)
    return params

  def parse_params_override(self, params):
    text = self._flags_obj.params_override
    if not text:
      return params
    return _override(params, text, _override_dict(text), '--params_override')


def parse_configuration(flags_obj) -> hyperparams.Config:
  """Parses, validates and locks the experiment config given by the flags."""
  params = ExperimentParser(flags_obj).parse()
  params.validate()
  params.lock()
  return params


def parse_experiment(experiment: str, config_files: list[str] | None = None,
                     params_override: str = '') -> hyperparams.Config:
  """`parse_configuration` for callers without absl flags (export, tools)."""
  return parse_configuration(types.SimpleNamespace(
      experiment=experiment, config_file=config_files,
      params_override=params_override, tpu='', tf_data_service=None))


def experiment_of(yaml_path: str) -> str:
  """The experiment a YAML names in its first line (`# --experiment=...`)."""
  with open(yaml_path) as f:
    first = f.readline().strip()
  if not first.startswith('# --experiment='):
    raise ValueError(f'{yaml_path}: the first line must be '
                     '`# --experiment=<name>`.')
  return first.split('=', 1)[1]


def registered_experiments(package: str = 'univision') -> list[str]:
  """Names of the experiments registered by modules of `package`, sorted.

  Model Garden's experiment registry has no public listing, so this reads
  its table (`exp_factory._REGISTERED_CONFIGS`); an experiment belongs to
  the package whose module defines its config factory. Only experiments
  whose modules were imported (e.g. through `univision.registry_imports`)
  are registered.
  """
  registered = exp_factory._REGISTERED_CONFIGS  # pylint: disable=protected-access
  return sorted(name for name, factory in registered.items()
                if factory.__module__.split('.')[0] == package)
