"""Tests for the log filter of the univision programs' console set-up."""
import logging
import os
import sysconfig

import pytest

from univision.core import logging_setup

_LIBRARY = sysconfig.get_paths()['purelib']


def _record(path: str, message: str, level: int = logging.INFO):
  return logging.LogRecord('absl', level, path, 1, message, None, None)


@pytest.mark.parametrize('path', [
    os.path.join(_LIBRARY, 'tensorflow', 'python', 'checkpoint',
                 'functional_saver.py'),
    os.path.join(_LIBRARY, 'tensorflow', 'python', 'saved_model', 'save.py'),
    os.path.join(_LIBRARY, 'orbit', 'controller.py')])
def test_library_info_chatter_is_dropped_and_its_warnings_kept(path):
  assert not logging_setup._is_shown(_record(path, 'Sharding callback.'))
  assert logging_setup._is_shown(
      _record(path, 'Checkpoint is slow.', logging.WARNING))


def test_only_our_deprecated_calls_are_reported():
  notice = ('From {}:12: foo (from tensorflow.python.bar) is deprecated and '
            'will be removed in a future version.')
  deprecation = os.path.join(_LIBRARY, 'tensorflow', 'python', 'util',
                             'deprecation.py')
  in_library = os.path.join(_LIBRARY, 'tensorflow', 'python', 'ops',
                            'nn_ops.py')
  ours = os.path.join(os.path.dirname(logging_setup.__file__), 'training.py')
  assert not logging_setup._is_shown(
      _record(deprecation, notice.format(in_library), logging.WARNING))
  assert logging_setup._is_shown(
      _record(deprecation, notice.format(ours), logging.WARNING))


def test_other_records_are_shown():
  assert logging_setup._is_shown(
      _record('/repo/univision/data/tfrecords.py', 'Wrote 640 records.'))
  assert logging_setup._is_shown(
      _record(os.path.join(_LIBRARY, 'official', 'core', 'train_lib.py'),
              'FLOPs (multi-adds) in model: 0.004989 Billions.'))
