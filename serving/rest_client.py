"""Send images to a served anomzoo model over TF Serving's REST API; print scores, write maps.

    python serving/rest_client.py --url http://localhost:8501 --model skip_attention_gan a.png b.jpg --maps maps/

The files go to the `serve_bytes` signature as they are (base64 in JSON, as TF Serving's REST API
takes binary inputs): the model decodes and resizes them inside its graph exactly as anomzoo's
loaders do, so any image size works and nothing is preprocessed here. Works against TF Serving and
against `anomzoo serve EXPORT_DIR` alike. Needs numpy and OpenCV (for the map PNGs) only.
"""

import argparse
import base64
import json
import pathlib
import sys
import urllib.request

import numpy as np


def build_request(files, signature="serve_bytes"):
    """The JSON body (a dict) of a predict request for `files`, in TF Serving's columnar format."""
    encoded = [{"b64": base64.b64encode(pathlib.Path(f).read_bytes()).decode("ascii")} for f in files]
    return {"signature_name": signature, "inputs": {"image_bytes": encoded}}


def parse_response(body):
    """A columnar predict response -> {"score": (B,), "is_anomalous": (B,), "anomaly_map": (B, H, W, 1)}."""
    outputs = body["outputs"]
    return {"score": np.asarray(outputs["score"], np.float32),
            "is_anomalous": np.asarray(outputs["is_anomalous"], bool),
            "anomaly_map": np.asarray(outputs["anomaly_map"], np.float32)}


def predict(url, model, files, version=None, timeout=60):
    """POST the request to `<url>/v1/models/<model>[/versions/<v>]:predict`; returns the parsed outputs."""
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    data = json.dumps(build_request(files)).encode("utf-8")
    request = urllib.request.Request(url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return parse_response(json.loads(response.read()))


def write_map(anomaly_map, path):
    """One (H, W, 1) map as an 8-bit PNG, scaled to its own maximum (white = most anomalous)."""
    import cv2

    values = anomaly_map[..., 0]
    top = float(values.max()) or 1.0
    if not cv2.imwrite(str(path), np.clip(values / top * 255.0, 0, 255).astype(np.uint8)):
        raise OSError(f"cannot write {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--model", required=True, help="the model name TF Serving serves it under")
    parser.add_argument("--version", type=int)
    parser.add_argument("--maps", help="folder to write each anomaly map to as PNG")
    args = parser.parse_args(argv)
    outputs = predict(args.url, args.model, args.files, args.version)
    for index, name in enumerate(args.files):
        verdict = "anomalous" if outputs["is_anomalous"][index] else "normal"
        print(f"{name}\t{outputs['score'][index]:.6g}\t{verdict}")
        if args.maps:
            pathlib.Path(args.maps).mkdir(parents=True, exist_ok=True)
            write_map(outputs["anomaly_map"][index], pathlib.Path(args.maps) / f"{pathlib.Path(name).stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
