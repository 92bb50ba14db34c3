"""Model builders by name. Each takes the config, the image shape, the class count and the
training pixels' mean and std, and returns an uncompiled Keras model that maps [0, 1] images
to class probabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import keras

from .layers import Deskew

if TYPE_CHECKING:
    from .config import TrainConfig

BN_MOMENTUM = 0.9  # the CNN's running statistics settle within a few hundred steps, as short presets need

Builder = Callable[["TrainConfig", tuple[int, int], int, float, float], keras.Model]


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
    x = keras.layers.Flatten()(x)
    for units in config.hidden_units:
        x = keras.layers.Dense(units, use_bias=not config.batch_norm)(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(config.activation)(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="dnn")


def conv_block(x: keras.KerasTensor, config: TrainConfig, filters: int, kernel: int, strides: int) -> keras.KerasTensor:
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not config.batch_norm)(x)
    if config.batch_norm:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return keras.layers.Activation(config.activation)(x)


def build_cnn(config: TrainConfig, shape: tuple[int, int], num_classes: int, mean: float, std: float) -> keras.Model:
    """A VGG-style convnet, channels last: per width in --filters, a stage of --convs-per-stage convolutions that
    halves the resolution (a stride-2 first convolution, or a 2x2 max pool at the end); the first convolution uses
    --kernel-size, the rest 3x3; then optional dense layers (--hidden-units) and the softmax."""
    assert config.filters is not None and config.convs_per_stage is not None and config.kernel_size is not None
    inputs, x = input_layers(config, shape, mean, std)
    x = keras.layers.Reshape((*shape, 1))(x)
    for stage, filters in enumerate(config.filters):
        for i in range(config.convs_per_stage):
            kernel = config.kernel_size if stage == i == 0 else 3
            stride = 2 if config.downsample == "stride" and i == 0 else 1
            x = conv_block(x, config, filters, kernel, stride)
        if config.downsample == "pool":
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    for units in config.hidden_units:
        x = keras.layers.Dense(units, use_bias=not config.batch_norm)(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = keras.layers.Activation(config.activation)(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")


MODELS: dict[str, Builder] = {"dnn": build_dnn, "cnn": build_cnn}


def build_model(
    config: TrainConfig, shape: tuple[int, int], num_classes: int, mean: float = 0.0, std: float = 1.0
) -> keras.Model:
    return MODELS[config.model](config, shape, num_classes, mean, std)
