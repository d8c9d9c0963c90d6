"""SpotPatch's learned gates: per layer, the shared weights or the task's copy.

SpotPatch (arXiv 2101.01260) learns, per task, which layers of a shared
detector join the task's patch. Each candidate layer l keeps the frozen
shared kernel W_l and a task copy W'_l (initialised from W_l), and a gate g_l
picks one:

  W_l(g) = (1 - g_l) * W_l + g_l * W'_l

The gate is a Bernoulli variable with logit a_l, trained through a
relaxation: a Gumbel-sigmoid sample sigmoid((a_l + logistic noise) / T) at
temperature T (annealed towards 0), made hard (0 or 1) in the forward pass
and differentiated as the soft sample (straight-through). The patch's
expected size, sum_l P(g_l = 1) * |W_l| / |W|, times lambda joins the
detection loss (`size_penalty`), so the optimiser trades accuracy for size.
After training the gates are hardened (`harden`: P > 0.5 joins the patch).

With a hard gate the mix is exact: g = 0 gives W_l (0 * W'_l adds zeros) and
g = 1 gives W'_l (0 * W_l). A gate is a layer with one trainable logit and a
non-trainable temperature, so a callback can anneal it in a compiled step.
"""
from typing import Optional, Sequence

import tensorflow as tf, tf_keras

_EPSILON = 1e-6  # Keeps the logistic noise finite.


def logistic_noise(uniform: tf.Tensor) -> tf.Tensor:
  """log(u) - log(1 - u): Gumbel(0, 1) minus Gumbel(0, 1), from u ~ U(0, 1)."""
  u = tf.clip_by_value(uniform, _EPSILON, 1.0 - _EPSILON)
  return tf.math.log(u) - tf.math.log1p(-u)


def straight_through(soft: tf.Tensor) -> tf.Tensor:
  """1 where `soft` > 0.5, else 0, with the gradient of `soft`."""
  hard = tf.cast(soft > 0.5, soft.dtype)
  return soft + tf.stop_gradient(hard - soft)


def temperature_at(step: tf.Tensor, start: float, end: float,
                   steps: int) -> tf.Tensor:
  """Exponential annealing from `start` at step 0 to `end` at `steps`."""
  if not (start > 0 and end > 0 and steps > 0):
    raise ValueError(f'Gate temperature schedule needs start, end > 0 and '
                     f'steps > 0, got {start}, {end}, {steps}.')
  progress = tf.minimum(tf.cast(step, tf.float32) / steps, 1.0)
  return start * tf.pow(end / start, progress)


def mix(shared: tf.Tensor, copy: tf.Tensor, gate: tf.Tensor) -> tf.Tensor:
  """(1 - gate) * shared + gate * copy: exact at a gate of 0 or 1."""
  gate = tf.cast(gate, shared.dtype)
  return (1.0 - gate) * shared + gate * copy


@tf_keras.utils.register_keras_serializable(package='univision')
class SpotGate(tf_keras.layers.Layer):
  """One learned gate; `value` (or calling it) gives the gate (a scalar).

  Training: a straight-through Gumbel-sigmoid sample at the current
  temperature. Inference: 1 if P(g = 1) > 0.5, else 0. Hardened (`harden`):
  the value fixed then, whatever the mode.
  """

  def __init__(self, initial_logit: float = 0.0,
               initial_temperature: float = 1.0,
               hard_value: Optional[float] = None, **kwargs):
    """Creates the gate.

    Args:
      initial_logit: a_l at the start; 0 is P(g = 1) = 0.5.
      initial_temperature: T at the start (assign `temperature` to anneal).
      hard_value: None while the gate learns; 0.0 or 1.0 once hardened.
      **kwargs: Keras layer arguments.

    Raises:
      ValueError: for a temperature <= 0 or a hard value not 0 or 1.
    """
    super().__init__(**kwargs)
    if initial_temperature <= 0:
      raise ValueError(f'{self.name}: initial_temperature must be > 0, got '
                       f'{initial_temperature}.')
    if hard_value not in (None, 0.0, 1.0):
      raise ValueError(f'{self.name}: hard_value must be None, 0 or 1, got '
                       f'{hard_value!r}.')
    self._initial_logit = float(initial_logit)
    self._initial_temperature = float(initial_temperature)
    self._hard_value = hard_value

  def build(self, input_shape=None):
    self.logit = self.add_weight(
        'logit', shape=(), trainable=True,
        initializer=tf_keras.initializers.Constant(self._initial_logit))
    self.temperature = self.add_weight(
        'temperature', shape=(), trainable=False,
        initializer=tf_keras.initializers.Constant(self._initial_temperature))
    super().build(input_shape)

  @property
  def hard_value(self) -> Optional[float]:
    return self._hard_value

  def probability(self) -> tf.Tensor:
    """P(g = 1) = sigmoid(logit): the expected share of the copy."""
    if not self.built:
      self.build(None)
    return tf.sigmoid(self.logit)

  def harden(self) -> float:
    """Fixes the gate at 1 if P(g = 1) > 0.5, else 0; returns that value."""
    self._hard_value = float(self.probability().numpy() > 0.5)
    return self._hard_value

  def value(self, training: bool = False,
            uniform: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The gate value.

    Args:
      training: Whether to sample (True) or take the most likely value.
      uniform: For tests, the U(0, 1) draw behind the noise (scalar).

    Returns:
      A float32 scalar, 0 or 1 in the forward pass.
    """
    if not self.built:
      self.build(None)
    if self._hard_value is not None:
      return tf.constant(self._hard_value, tf.float32)
    if not training:
      return tf.cast(self.logit > 0.0, tf.float32)
    if uniform is None:
      uniform = tf.random.uniform([])
    soft = tf.sigmoid((self.logit + logistic_noise(uniform)) /
                      self.temperature)
    return straight_through(soft)

  def call(self, inputs, training=None):
    """`value(training)`; `inputs` is unused (a gate has no input).

    `training` may be a Python bool, None (inference) or a boolean tensor.
    """
    del inputs
    if training is None or isinstance(training, bool):
      return self.value(bool(training))
    return tf.cond(training, lambda: self.value(True),
                   lambda: self.value(False))

  def get_config(self):
    return {**super().get_config(),
            'initial_logit': self._initial_logit,
            'initial_temperature': self._initial_temperature,
            'hard_value': self._hard_value}


def size_penalty(gates: Sequence[SpotGate], sizes: Sequence[int],
                 total: int) -> tf.Tensor:
  """sum_l P(g_l = 1) * |W_l| / |W|: the patch's expected share of the model.

  Args:
    gates: One gate per candidate layer.
    sizes: |W_l|, the parameters each gate would put in the patch.
    total: |W|, the model's parameters.

  Returns:
    A scalar in [0, sum(sizes) / total]; multiply by lambda for the loss.

  Raises:
    ValueError: if `gates` and `sizes` differ in length or total <= 0.
  """
  if len(gates) != len(sizes) or total <= 0:
    raise ValueError(f'size_penalty: {len(gates)} gates, {len(sizes)} sizes, '
                     f'total {total}: need one size per gate and total > 0.')
  if not gates:
    return tf.constant(0.0)
  weights = tf.constant([s / total for s in sizes], tf.float32)
  probabilities = tf.stack([gate.probability() for gate in gates])
  return tf.reduce_sum(probabilities * weights)
