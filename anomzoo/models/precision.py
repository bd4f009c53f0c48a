"""The `precision` option of every model: float32 (the default) or bfloat16 mixed precision.

"bfloat16" runs each network's layers in bfloat16 while its weights, optimizer state and
BatchNorm statistics stay float32 (Keras' "mixed_bfloat16" policy). The layers that produce a
network's outputs stay float32, so the losses, scores and maps a model computes from them are
float32 as before, and the models' loss code needs no casts. It is worth it only where the CPU
has bfloat16 hardware (AVX-512 BF16 or AMX: about 2-3x TensorFlow's float32 convolution speed,
see benchmarks/results/precision.md); elsewhere oneDNN emulates it, no faster than float32.
Results are not bit-identical to float32 ones: bfloat16 keeps 8 bits of mantissa.
"""

import keras

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def check(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    return precision


def fast_on_this_cpu(precision):
    """False when bfloat16 is asked for on a CPU without bfloat16 instructions (it then runs, but
    no faster than float32)."""
    from anomzoo.provenance import cpu_flags

    return precision == "float32" or any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def apply(network, precision):
    """Set the compute dtype of every layer inside `network` (a functional model, nested models
    included) for `precision`, except the layers that produce its outputs, which stay float32.
    Variables are unchanged: mixed precision keeps them float32, so weights load either way."""
    if check(precision) == "float32":
        return network
    keep = set()

    def mark_outputs(model):
        for tensor in model.outputs:
            layer = tensor._keras_history.operation
            keep.add(id(layer))
            if isinstance(layer, keras.Model) and hasattr(layer, "outputs"):
                mark_outputs(layer)  # a nested model's outputs are the network's: float32 too

    mark_outputs(network)
    for layer in network._flatten_layers(include_self=False):
        if id(layer) not in keep and not isinstance(layer, keras.layers.InputLayer):
            layer.dtype_policy = PRECISIONS[precision]
    return network


def float32_copy(model):
    """`model` itself when it computes in float32, else a float32 copy with the same weights (an
    uncompiled model of the same class and configuration). Exports and the zoo ship this: LiteRT and
    ONNX have no bfloat16 kernels, and float32 inference gives the same numbers on every CPU."""
    if getattr(model, "precision", "float32") == "float32":
        return model
    copy = type(model).from_config({**model.get_config(), "precision": "float32"})
    copy.set_weights(model.get_weights())
    copy.set_stage(model.stage.name)
    return copy
