"""Serving: the REST and gRPC clients' requests against the SavedModel's signatures, and
`anomzoo serve` answering TF Serving's REST API over loopback.

TF Serving's binary is not installable here, so the requests are checked as TF Serving reads them:
the gRPC request serialised to bytes and parsed back, its tensors fed to the signature it names;
the REST body decoded as TF Serving's REST API documents (base64 objects to bytes).
"""

import base64
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf

from anomzoo.cli import main
from anomzoo.data import load_image
from anomzoo.export import export, open_trained
from anomzoo.export.server import make_server
from anomzoo.models import build_model

from conftest import REPO, huge_png


def client(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "serving" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tire_root, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model("sagan", "tiny", image_shape=(64, 64, 3))
    root = tmp_path_factory.mktemp("serving")
    model.save(root / "model.keras")
    out = root / "export"
    metadata = export(open_trained(root / "model.keras", dataset=str(tire_root)), out, formats=["saved_model"])
    files = sorted(tire_root.glob("test/*/000.png"))
    expected = model.predict(np.stack([load_image(f, 64, 3) for f in files]), verbose=0)
    return out, metadata, files, expected


def test_grpc_request_is_what_the_signature_takes(exported):
    out, metadata, files, expected = exported
    grpc_client = client("grpc_client")
    request = grpc_client.build_request(files, metadata["name"], version=1)
    from tensorflow_serving.apis import predict_pb2

    received = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # the bytes on the wire
    assert received.model_spec.name == metadata["name"] and received.model_spec.version.value == 1
    loaded = tf.saved_model.load(str(out / metadata["name"] / "1"))
    signature = loaded.signatures[received.model_spec.signature_name]
    specs = signature.structured_input_signature[1]
    assert set(received.inputs) == set(specs)
    for key, proto in received.inputs.items():
        assert tf.dtypes.as_dtype(proto.dtype) == specs[key].dtype
        assert specs[key].shape.is_compatible_with([d.size for d in proto.tensor_shape.dim])
    outputs = signature(**{k: tf.make_ndarray(v) for k, v in received.inputs.items()})
    np.testing.assert_allclose(outputs["score"].numpy(), expected["score"], rtol=1e-5, atol=1e-5)
    response = predict_pb2.PredictResponse()  # as TF Serving answers: one TensorProto per output
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    parsed = grpc_client.parse_response(predict_pb2.PredictResponse.FromString(response.SerializeToString()))
    np.testing.assert_array_equal(parsed["score"], outputs["score"].numpy())
    assert parsed["anomaly_map"].shape == (len(files), 64, 64, 1) and parsed["is_anomalous"].dtype == bool


def test_rest_request_is_what_the_signature_takes(exported):
    out, metadata, files, expected = exported
    body = json.loads(json.dumps(client("rest_client").build_request(files)))  # the JSON on the wire
    signature = tf.saved_model.load(str(out / metadata["name"] / "1")).signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    assert set(body["inputs"]) == set(specs) and specs["image_bytes"].dtype == tf.string
    contents = [base64.b64decode(item["b64"]) for item in body["inputs"]["image_bytes"]]
    assert contents == [f.read_bytes() for f in files]
    outputs = signature(image_bytes=tf.constant(contents))
    np.testing.assert_allclose(outputs["score"].numpy(), expected["score"], rtol=1e-5, atol=1e-5)


@pytest.fixture
def served(exported):
    out, metadata, *_ = exported
    server = make_server(out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", metadata["name"]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def post(url, body, timeout=60):
    return post_raw(url, json.dumps(body).encode(), timeout=timeout)


def post_raw(url, data, timeout=60):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rest_client_against_anomzoo_serve(served, exported, tmp_path):
    url, name = served
    _, _, files, expected = exported
    rest_client = client("rest_client")
    outputs = rest_client.predict(url, name, files, version=1, timeout=60)
    np.testing.assert_allclose(outputs["score"], expected["score"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs["anomaly_map"], expected["anomaly_map"], rtol=1e-5, atol=1e-5)
    # The command line, as a user runs it: scores printed, maps written as PNG.
    shown = subprocess.run([sys.executable, str(REPO / "serving" / "rest_client.py"), "--url", url, "--model", name,
                            "--maps", str(tmp_path / "maps"), *map(str, files)],
                           capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert [line.split("\t")[0] for line in shown] == [str(f) for f in files]
    assert len(list((tmp_path / "maps").glob("*.png"))) == len({f.stem for f in files})


def test_serve_speaks_the_row_format_float_signature_and_errors(served, exported):
    url, name = served
    _, _, files, expected = exported
    images = np.stack([load_image(f, 64, 3) for f in files[:2]]).astype("float32") / 255.0
    status, body = post(f"{url}/v1/models/{name}:predict", {"instances": images.tolist()})
    assert status == 200 and len(body["predictions"]) == 2
    np.testing.assert_allclose([p["score"] for p in body["predictions"]], expected["score"][:2], rtol=1e-5, atol=1e-5)
    assert isinstance(body["predictions"][0]["is_anomalous"], bool)
    with urllib.request.urlopen(f"{url}/v1/models/{name}", timeout=30) as response:
        assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
    assert post(f"{url}/v1/models/other:predict", {"instances": []})[0] == 404
    assert post(f"{url}/v1/models/{name}/versions/7:predict", {"instances": []})[0] == 404
    status, body = post(f"{url}/v1/models/{name}:predict", {"signature_name": "nope", "instances": []})
    assert status == 400 and "not found in signature def" in body["error"]
    status, body = post(f"{url}/v1/models/{name}:predict", {"instances": [[1.0, 2.0]]})
    assert status == 400 and body["error"]
    status, body = post(f"{url}/v1/models/{name}:predict",
                        {"signature_name": "serve_bytes", "inputs": {"image_bytes": [{"b64": "bm90IGFuIGltYWdl"}]}})
    assert status == 400 and body["error"]


@pytest.mark.parametrize("body", [{"instances": 5}, {"instances": {"image": 1}}, [1, 2],
                                  {"instances": [{"images": [0.0]}, 3]}, {"signature_name": [1], "inputs": []}])
def test_a_malformed_body_is_answered_400_not_a_dropped_connection(served, body):
    url, name = served
    status, answer = post(f"{url}/v1/models/{name}:predict", body)
    assert status == 400 and answer["error"], answer


def test_serve_on_a_taken_port_is_one_line_naming_it(exported, capsys):
    with socket.socket() as holder:  # another process's server, as far as serve can tell
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["serve", str(exported[0]), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"anomzoo: error: cannot listen on 127.0.0.1:{port}") and error.count("\n") == 1, error


def test_runner_checks_images_as_the_model_does(exported):
    # Fed to the SavedModel, a (1, 2) batch aborts the process inside oneDNN's convolution on some CPUs.
    from anomzoo.export.runtime import load_export
    from anomzoo.export.server import find_saved_model

    *_, folder = find_saved_model(exported[0])
    runner = load_export(folder)
    with pytest.raises(ValueError, match=r"shape \(N, 64, 64, 3\).*got shape \(1, 2\)"):
        runner(np.zeros((1, 2), "float32"))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"float images in \[0, 1\], got values in \[0, 255\]"):
        runner(images.astype("float32"))  # 0-255 floats: scores far off, silently, before this check
    np.testing.assert_array_equal(runner(images)["score"], runner(images / 255.0)["score"])


def test_bad_base64_deep_nesting_and_oversize_bodies_get_an_answer(served, monkeypatch, tmp_path):
    """Each was a dropped connection and a traceback in the server's log (bad base64, 200,000 nested
    '['), or read whole into memory (66 MB took the server to 3.2 GB): now 400, 400 and 413."""
    from anomzoo.export import server

    url, name = served
    predict = f"{url}/v1/models/{name}:predict"
    status, body = post(predict, {"signature_name": "serve_bytes", "instances": [{"b64": "!!!not base64"}]})
    assert status == 400 and "base64" in body["error"]
    status, body = post_raw(predict, b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and "nested too deeply" in body["error"]
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 1000)
    status, body = post_raw(predict, json.dumps({"instances": [[0.0] * 400]}).encode())
    assert status == 413 and "over the limit of 1000 bytes" in body["error"]
    monkeypatch.undo()
    # A 2.5 kB PNG claiming 40000 x 40000 pixels is refused from its header, inside the SavedModel's
    # graph (the same under TF Serving), before anything is decoded (an 8000 px PNG took 1.4 GB).
    bomb = base64.b64encode(huge_png(tmp_path / "huge.png").read_bytes()).decode()
    status, body = post(predict, {"signature_name": "serve_bytes", "instances": [{"b64": bomb}]})
    assert status == 400 and "larger than 33554432 pixels" in body["error"]
    status, _ = post(predict, {"instances": [np.zeros((64, 64, 3)).tolist()]})
    assert status == 200  # the server still answers
