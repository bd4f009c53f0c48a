"""Send images to TF Serving over gRPC (tensorflow-serving-api); print scores, write maps.

    python serving/grpc_client.py --server localhost:8500 --model skip_attention_gan a.png b.jpg --maps maps/

Like rest_client.py, the encoded files go to the `serve_bytes` signature unchanged; the model
decodes and resizes them in its graph as anomzoo's loaders do.
"""

import argparse
import pathlib
import sys

import numpy as np


def build_request(files, model, signature="serve_bytes", version=None):
    """A `PredictRequest` carrying `files` as the (B,) string tensor `image_bytes`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    contents = [pathlib.Path(f).read_bytes() for f in files]
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(contents, dtype=tf.string, shape=[len(contents)]))
    return request


def parse_response(response):
    """A `PredictResponse` -> {"score", "is_anomalous", "anomaly_map"} as numpy arrays."""
    import tensorflow as tf

    return {name: tf.make_ndarray(response.outputs[name]) for name in ("score", "is_anomalous", "anomaly_map")}


def predict(server, model, files, version=None, timeout=60):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return parse_response(stub.Predict(build_request(files, model, version=version), timeout))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", type=int)
    parser.add_argument("--maps", help="folder to write each anomaly map to as PNG")
    args = parser.parse_args(argv)
    outputs = predict(args.server, args.model, args.files, args.version)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from rest_client import write_map  # one PNG writer for both clients

    for index, name in enumerate(args.files):
        verdict = "anomalous" if outputs["is_anomalous"][index] else "normal"
        print(f"{name}\t{float(outputs['score'][index]):.6g}\t{verdict}")
        if args.maps:
            pathlib.Path(args.maps).mkdir(parents=True, exist_ok=True)
            write_map(np.asarray(outputs["anomaly_map"][index]), pathlib.Path(args.maps) / f"{pathlib.Path(name).stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
