"""LiteRT (`.tflite`) files of the float signature, in three precisions.

`TFLiteConverter.from_keras_model` fails on Keras 3, so the converter reads the SavedModel's
`serving_default` (the bytes signature holds string ops that LiteRT's builtins lack).
"""

import tensorflow as tf

#: variant -> what it stores (recorded in the export's metadata)
VARIANTS = {
    "float32": "float32 weights and arithmetic",
    "float16": "float16 weights, dequantised to float32 when loaded; float32 arithmetic",
    "int8_dynamic": "int8 weights (dynamic-range quantisation); activations quantised on the fly where "
                    "a kernel supports it, float32 elsewhere",
}


def convert(saved_model_dir, variant):
    """The `.tflite` bytes of `variant` (a key of VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown LiteRT variant {variant!r}; expected one of {sorted(VARIANTS)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
