"""One compiled training step on a fixed random batch, as a blocking call."""
import tensorflow as tf, tf_keras


def train_step(model: tf_keras.Model, batch: int, resolution: int,
               num_classes: int, optimizer: tf_keras.optimizers.Optimizer,
               jit_compile: bool = False):
  """A call running one step of `optimizer` on `model` (softmax loss).

  The batch (normal images, uniform labels) is fixed and in the graph, so
  the step measures the model and the update, not an input pipeline.
  `jit_compile`: the step compiled by XLA instead of run op by op.
  """
  images = tf.random.stateless_normal([batch, resolution, resolution, 3],
                                      seed=[0, 3])
  labels = tf.random.stateless_uniform([batch], seed=[0, 4],
                                       maxval=num_classes, dtype=tf.int32)
  loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  optimizer.build(model.trainable_variables)

  @tf.function(jit_compile=jit_compile)
  def step():
    with tf.GradientTape() as tape:
      loss = loss_fn(labels, model(images, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return lambda: step().numpy()
