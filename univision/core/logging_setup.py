"""Console output of the univision programs: each line once, no probe noise.

`train.py` and `export.py` call `setup()` before `app.run`: TensorFlow probes
for GPUs as soon as `app.run` has parsed the flags, before `main`.

* stdout becomes line buffered, so that printed lines and log lines (stderr)
  keep their order when both go to one file (`make demo > demo.log 2>&1`).
* TensorFlow gives its `tensorflow` logger a stderr handler of its own when
  it is imported before absl's handler is installed, so each of its records
  was printed twice (`INFO:tensorflow:...` and absl's `I1205 ...` line).
  That handler is removed: records go through absl's handler (which
  `app.run` puts on the root logger) only.
* absl's handler drops deprecation notices that TensorFlow logs about calls
  made inside installed libraries (e.g. its own FLOPs profiler), and the INFO
  records of TensorFlow's checkpoint and SavedModel writers and of Orbit's
  controller (shard timings, renamed inputs, checkpoint syncs; Orbit's own
  messages are printed, see `univision.core.training`). Their warnings and
  errors, and deprecation notices about this project's calls, are kept.
* TF_CPP_MIN_LOG_LEVEL is applied to the C++ lines that TensorFlow writes with
  absl's C++ logger, which does not read it (e.g. Grappler's 'Number of
  eligible GPUs' on every graph optimization).
* Where no CUDA driver is installed, TensorFlow's GPU probe can only fail,
  with an ERROR line ('failed call to cuInit'): it is run once here with
  stderr muted. Where a driver is installed, the probe and its messages are
  left alone.
"""
from collections.abc import Iterator
import contextlib
import ctypes
import logging
import os
import sys
import sysconfig

from absl import logging as absl_logging
import tensorflow as tf, tf_keras

# absl::SetMinLogLevel in TensorFlow 2.20's libtensorflow_framework (absl LTS
# 2025-01-27). With another build the symbol is missing and nothing changes.
_ABSL_SET_MIN_LOG_LEVEL = (
    '_ZN4absl12lts_2025012714SetMinLogLevelENS0_18LogSeverityAtLeastE')
_LIBRARY_DIRS = tuple({sysconfig.get_paths()['purelib'],
                       sysconfig.get_paths()['platlib']})
# Modules whose INFO records are internal chatter.
_CHATTY_MODULES = (os.path.join('tensorflow', 'python', 'checkpoint', ''),
                   os.path.join('tensorflow', 'python', 'saved_model', ''),
                   os.path.join('orbit', 'controller.py'))


def setup() -> None:
  """Configures logging and stdout for a univision program; see the module."""
  sys.stdout.reconfigure(line_buffering=True)
  tf_logger = tf.get_logger()
  for handler in list(tf_logger.handlers):
    tf_logger.removeHandler(handler)
  absl_logging.get_absl_handler().addFilter(_is_shown)
  _apply_min_log_level_to_absl_cpp()
  if not has_cuda_driver():
    with _stderr_muted():
      tf.config.list_physical_devices('GPU')


def has_cuda_driver() -> bool:
  """Whether libcuda.so.1, which TensorFlow's GPU probe opens, loads."""
  try:
    ctypes.CDLL('libcuda.so.1')
  except OSError:
    return False
  return True


def _is_shown(record: logging.LogRecord) -> bool:
  """False for library chatter and library-internal deprecation notices.

  TensorFlow logs deprecation notices as 'From <file>:<line>: <name> ... is
  deprecated ...', naming the file that made the call.
  """
  if record.levelno <= logging.INFO and any(
      module in record.pathname for module in _CHATTY_MODULES):
    return False
  message = record.getMessage()
  return not (message.startswith('From ') and 'is deprecated' in message and
              message[len('From '):].startswith(_LIBRARY_DIRS))


def _apply_min_log_level_to_absl_cpp() -> None:
  """Gives absl's C++ logger TensorFlow's TF_CPP_MIN_LOG_LEVEL, if set."""
  level = os.environ.get('TF_CPP_MIN_LOG_LEVEL', '')
  if not level.isdigit():
    return
  try:
    library = ctypes.CDLL(os.path.join(tf.sysconfig.get_lib(),
                                       'libtensorflow_framework.so.2'))
  except OSError:  # Not Linux: another library name, left alone.
    return
  set_min_log_level = getattr(library, _ABSL_SET_MIN_LOG_LEVEL, None)
  if set_min_log_level is not None:
    set_min_log_level(min(int(level), 3))  # 0 INFO ... 3 FATAL, as TF's.


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
  """Sends file descriptor 2 (C++ and Python stderr) to /dev/null."""
  sys.stderr.flush()
  saved = os.dup(2)
  with open(os.devnull, 'w') as devnull:
    os.dup2(devnull.fileno(), 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
