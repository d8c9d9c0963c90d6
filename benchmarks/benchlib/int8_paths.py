"""The two int8 routes for each implementation: PTQ and QAT conversion.

* PTQ (`ptq_*`): the same post-training full-int8 conversion for both
  (`tflite.int8_model`, Model Garden's `int8_full` settings).
* QAT (`qat_*`): each implementation's own quantization-aware model,
  converted untrained (latency and op types do not depend on training):
  ours is the flat graph of `univision.quantization.qat` (op set 'tflite',
  the CPU one) with ranges calibrated on the same images; Model Garden's is
  `official.projects.qat`'s `build_qat_classification_model` converted with
  the settings of its `qat` quant type (`Optimize.DEFAULT`, uint8 I/O). Model
  Garden's QAT keeps float ops on the conv models and raises on the hybrids
  (see ../shared/reference/model_garden.md, section 4.2).
"""
from typing import Iterable

import numpy as np
import tensorflow as tf, tf_keras
from official.projects.qat.vision.configs import common as qat_common
from official.projects.qat.vision.modeling import factory as qat_factory
from official.vision.configs import backbones as backbones_cfg
from official.vision.configs import image_classification as ic_cfg

from benchlib import tflite
from univision.quantization import calibration as qat_calibration
from univision.quantization import flat_graph
from univision.quantization import keras_converter
from univision.quantization import qat


def ptq(model: tf_keras.Model, resolution: int,
        images: Iterable[np.ndarray]) -> bytes:
  """Post-training full-int8 TFLite model, batch 1 (either implementation)."""
  return tflite.int8_model(model, (1, resolution, resolution, 3), images)


def qat_ours(model: tf_keras.Model, resolution: int,
             images: list[np.ndarray]) -> bytes:
  """Our QAT model of `model`, calibrated on `images`, as int8 TFLite."""
  flat = flat_graph.flat_classifier(model, (resolution, resolution), 'tflite')
  qat_model = qat.quantize_flat_model(flat)
  qat_calibration.calibrate(qat_model, flat, [np.concatenate(images)])
  return qat.convert(qat_model)


def qat_model_garden(model: tf_keras.Model, model_id: str,
                     resolution: int) -> bytes:
  """Model Garden's QAT classifier of `model`, converted as its `qat` type."""
  config = ic_cfg.ImageClassificationModel(
      num_classes=model.layers[-1].units,
      backbone=backbones_cfg.Backbone(
          type='mobilenet',
          mobilenet=backbones_cfg.MobileNet(model_id=model_id)))
  qat_model = qat_factory.build_qat_classification_model(
      model, qat_common.Quantization(),
      tf_keras.layers.InputSpec(shape=[None, resolution, resolution, 3]),
      config)
  converter = keras_converter.converter(qat_model,
                                       [1, resolution, resolution, 3])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.inference_input_type = tf.uint8
  converter.inference_output_type = tf.uint8
  return converter.convert()
