"""Model builders by name. Each takes the config, the image shape, the class count and the
training pixels' mean and std, and returns an uncompiled Keras model that maps [0, 1] images
to class probabilities.

With `config.precision` "bfloat16" the hidden layers compute in bfloat16 on float32 weights (Keras' mixed_bfloat16
policy, layer by layer); the input layers (deskew, standardise), the penultimate features and the softmax stay
float32, so the loss, calibration and scikit-learn see float32 as from any other model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import keras

from .layers import Deskew

if TYPE_CHECKING:
    from .config import TrainConfig

BN_MOMENTUM = 0.9  # the CNN's running statistics settle within a few hundred steps, as short presets need

Builder = Callable[["TrainConfig", tuple[int, int], int, float, float], keras.Model]


def hidden_dtype(config: TrainConfig) -> str:
    """The dtype policy of the hidden layers: mixed_bfloat16 for a bfloat16 run ("auto" is resolved before building)."""
    return "mixed_bfloat16" if config.precision == "bfloat16" else "float32"


def outputs_layer(config: TrainConfig, x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    """The softmax in float32; in a bfloat16 model it reads the features cast to float32 by a layer of their own."""
    if hidden_dtype(config) != "float32":
        x = keras.layers.Activation("linear", dtype="float32", name="features")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)


def input_layers(
    config: TrainConfig, shape: tuple[int, int], mean: float, std: float
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model's input and what the first layer sees: the input deskewed when --deskew is on, then standardised
    with the training set's statistics when --standardize is."""
    inputs = keras.Input(shape, name="image")
    x = inputs
    if config.deskew:
        x = Deskew(name="deskew")(x)
    if config.standardize:
        x = keras.layers.Rescaling(1 / std, offset=-mean / std, name="standardize")(x)
    return inputs, x


def build_dnn(config: TrainConfig, shape: tuple[int, int], num_classes: int, mean: float, std: float) -> keras.Model:
    """The study's fully connected network: flatten, then Dense blocks with optional batch norm and dropout."""
    inputs, x = input_layers(config, shape, mean, std)
    dtype = hidden_dtype(config)
    x = keras.layers.Flatten()(x)
    for units in config.hidden_units:
        x = keras.layers.Dense(units, use_bias=not config.batch_norm, dtype=dtype)(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(dtype=dtype)(x)
        x = keras.layers.Activation(config.activation, dtype=dtype)(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, dtype=dtype)(x)
    outputs = outputs_layer(config, x, num_classes)
    return keras.Model(inputs, outputs, name="dnn")


def conv_block(x: keras.KerasTensor, config: TrainConfig, filters: int, kernel: int, strides: int) -> keras.KerasTensor:
    dtype = hidden_dtype(config)
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=not config.batch_norm, dtype=dtype
    )(x)
    if config.batch_norm:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, dtype=dtype)(x)
    return keras.layers.Activation(config.activation, dtype=dtype)(x)


def build_cnn(config: TrainConfig, shape: tuple[int, int], num_classes: int, mean: float, std: float) -> keras.Model:
    """A VGG-style convnet, channels last: per width in --filters, a stage of --convs-per-stage convolutions that
    halves the resolution (a stride-2 first convolution, or a 2x2 max pool at the end); the first convolution uses
    --kernel-size, the rest 3x3; then optional dense layers (--hidden-units) and the softmax."""
    assert config.filters is not None and config.convs_per_stage is not None and config.kernel_size is not None
    inputs, x = input_layers(config, shape, mean, std)
    dtype = hidden_dtype(config)
    x = keras.layers.Reshape((*shape, 1))(x)
    for stage, filters in enumerate(config.filters):
        for i in range(config.convs_per_stage):
            kernel = config.kernel_size if stage == i == 0 else 3
            stride = 2 if config.downsample == "stride" and i == 0 else 1
            x = conv_block(x, config, filters, kernel, stride)
        if config.downsample == "pool":
            x = keras.layers.MaxPooling2D(dtype=dtype)(x)
    x = keras.layers.Flatten(dtype=dtype)(x)
    for units in config.hidden_units:
        x = keras.layers.Dense(units, use_bias=not config.batch_norm, dtype=dtype)(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, dtype=dtype)(x)
        x = keras.layers.Activation(config.activation, dtype=dtype)(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, dtype=dtype)(x)
    outputs = outputs_layer(config, x, num_classes)
    return keras.Model(inputs, outputs, name="cnn")


MODELS: dict[str, Builder] = {"dnn": build_dnn, "cnn": build_cnn}


def build_model(
    config: TrainConfig, shape: tuple[int, int], num_classes: int, mean: float = 0.0, std: float = 1.0
) -> keras.Model:
    return MODELS[config.model](config, shape, num_classes, mean, std)


def past_deskew(model: keras.Model) -> keras.Model:
    """The part of `model` after its deskew layer, sharing its layers and weights: what trains on digits deskewed
    once beforehand (layers.deskewed) rather than in every step, where nothing moves the digits between the two."""
    return keras.Model(model.get_layer("deskew").output, model.output, name=model.name)
