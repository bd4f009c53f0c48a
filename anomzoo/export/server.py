"""`anomzoo serve EXPORT`: TF Serving's REST predict API, answered from an exported SavedModel.

For trying a model and its clients locally where TF Serving's binary is not installed: the same
client (serving/rest_client.py, curl) works here and against TF Serving. Implemented, as TF Serving
documents them:

- `GET  /`: a page to try the model in a browser: drop or choose images, see each one's score,
  verdict and anomaly map drawn over it (`page.html`; it posts to the predict API below with the
  `serve_bytes` signature, as a TF Serving client would);
- `GET  /v1/models/<name>[/versions/<v>]`: the model's status;
- `POST /v1/models/<name>[/versions/<v>]:predict` with `signature_name` (default
  `serving_default`) and either `instances` (row format; answered with `predictions`, one dict per
  instance) or `inputs` (columnar; answered with `outputs`); binary values as `{"b64": "..."}`.

Errors are answered as TF Serving does, `{"error": "..."}` with a 4xx status: malformed JSON, bad
base64 and JSON nested too deeply with 400, a body over MAX_BODY_BYTES with 413 (before it is read).
Not implemented: classify/regress APIs, model labels, several models in one server. This server is
for local testing: behind a network, put TF Serving or a real web server in front.
"""

import base64
import http.server
import json
import pathlib
import re

import numpy as np

#: the largest request body read: 32 MB of JSON (about 2,000 32 px RGB images as lists of floats)
#: already take a Python process past 1 GB while it is parsed.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: the largest image file the page sends: base64 takes 4 bytes for 3, and the JSON around it little.
MAX_UPLOAD_BYTES = (MAX_BODY_BYTES - 4096) // 4 * 3

_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")
_STATUS = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?$")


def find_saved_model(path):
    """(name, version, SavedModel dir) for an export folder, a model base path or a version folder."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path.parent.name, int(path.name) if path.name.isdigit() else 1, path
    metadata = path / "metadata.json"
    if metadata.is_file():
        path = path / json.loads(metadata.read_text())["name"]
    versions = sorted((int(p.name), p) for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file())
    if not versions:
        raise FileNotFoundError(f"no SavedModel under {path}: expected an export folder (anomzoo export), "
                                "<name>/ with numbered version folders, or one version folder")
    version, folder = versions[-1]  # TF Serving's default policy: the latest version
    return path.name, version, folder


def _decode(value):
    """JSON values -> numpy, with {"b64": ...} objects turned into bytes (TF Serving's binary form)."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as error:  # binascii.Error is a ValueError
            raise ValueError(f"a \"b64\" value is not valid base64: {error}") from None
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _named_inputs(raw, specs, row_format):
    """{input name: value} from a request's `instances` (row format) or `inputs` (columnar)."""
    def named(value):
        return isinstance(value, dict) and "b64" not in value

    if row_format and raw and named(raw[0]):
        return {key: [_decode(instance[key]) for instance in raw] for key in raw[0]}
    if not row_format and named(raw):
        return {key: _decode(value) for key, value in raw.items()}
    return {next(iter(specs)): _decode(raw)}  # a signature's only input, unnamed


def _json_ready(array):
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return [{"b64": base64.b64encode(v).decode("ascii")} for v in array.ravel()]
    return array.tolist()


class ServedModel:
    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self.name, self.version, folder = find_saved_model(path)
        self._loaded = tf.saved_model.load(str(folder))
        self.signatures = dict(self._loaded.signatures)
        metadata = folder / "assets.extra" / "anomzoo.json"  # written by `anomzoo export`
        try:
            self.metadata = json.loads(metadata.read_text()) if metadata.is_file() else {}
        except ValueError as error:
            raise ValueError(f"{metadata} is not the JSON anomzoo export writes ({error})") from None

    def page(self):
        """The try-a-model page, its settings (thresholds, colour table, limits) written into it."""
        from anomzoo.report.overlay import MAX_OPACITY, colour_table

        spec = self.signatures["serving_default"].structured_input_signature[1]
        config = {
            "name": self.name, "version": self.version, "predict_url": f"/v1/models/{self.name}:predict",
            "image_shape": next(iter(spec.values())).shape[1:].as_list(),
            "score_threshold": self.metadata.get("score_threshold"),
            "map_threshold": self.metadata.get("map_threshold"),
            "colours": colour_table().tolist(), "max_opacity": MAX_OPACITY,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
        }
        # "<" escaped: no value (a model name) can close the <script> element it sits in.
        settings = json.dumps(config).replace("<", "\\u003c")
        return (pathlib.Path(__file__).with_name("page.html").read_text()
                .replace("/*CONFIG*/null", settings).encode("utf-8"))

    def predict(self, body):
        """A predict request body (dict) -> (response dict, HTTP status)."""
        tf = self._tf
        if not isinstance(body, dict):
            return {"error": "JSON request must be an object with \"instances\" or \"inputs\""}, 400
        name = body.get("signature_name", "serving_default")
        if not isinstance(name, str) or name not in self.signatures:
            return {"error": f"Serving signature name: \"{name}\" not found in signature def"}, 400
        signature = self.signatures[name]
        specs = signature.structured_input_signature[1]
        row_format = "instances" in body
        if row_format == ("inputs" in body):
            return {"error": "JSON request must have exactly one of \"instances\" or \"inputs\""}, 400
        raw = body["instances"] if row_format else body["inputs"]
        if row_format and not isinstance(raw, list):
            return {"error": "\"instances\" must be a list, one item per instance"}, 400
        try:
            inputs = _named_inputs(raw, specs, row_format)
        except ValueError as error:
            return {"error": str(error)}, 400
        except (KeyError, TypeError) as error:  # instances naming other inputs than the first, or none
            return {"error": f"every instance must name the inputs the first one names: {error!r}"}, 400
        if sorted(inputs) != sorted(specs):
            return {"error": f"signature {name} takes inputs {sorted(specs)}, got {sorted(inputs)}"}, 400
        try:
            tensors = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in inputs.items()}
            for key, tensor in tensors.items():
                # Checked here: a wrong shape reaching the graph can abort the process inside oneDNN.
                if not specs[key].shape.is_compatible_with(tensor.shape):
                    return {"error": f"input {key} of signature {name} must have shape {specs[key].shape}, "
                                     f"got {tensor.shape}"}, 400
            outputs = {key: value.numpy() for key, value in signature(**tensors).items()}
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            return {"error": str(error).strip().splitlines()[0]}, 400
        if row_format:
            count = len(next(iter(outputs.values())))
            return {"predictions": [{key: _json_ready(value[i]) if np.ndim(value[i]) else value[i].item()
                                     for key, value in outputs.items()} for i in range(count)]}, 200
        return {"outputs": {key: _json_ready(value) for key, value in outputs.items()}}, 200


def make_server(export_path, host="127.0.0.1", port=8501):
    """An `http.server` answering the REST API for the SavedModel at `export_path` (not started)."""
    served = ServedModel(export_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body, status):
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _known(self, match):
            if match.group(1) != served.name:
                return f"Servable not found for request: Latest({match.group(1)})"
            if match.group(2) and int(match.group(2)) != served.version:
                return f"Servable not found for request: Specific({match.group(1)}, {match.group(2)})"
            return None

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                page = served.page()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                return self.wfile.write(page)
            match = _STATUS.match(self.path)
            if not match or self._known(match):
                return self._answer({"error": self._known(match) if match else "Malformed request"}, 404)
            self._answer({"model_version_status": [{"version": str(served.version), "state": "AVAILABLE",
                                                    "status": {"error_code": "OK", "error_message": ""}}]}, 200)

        def do_POST(self):
            match = _PREDICT.match(self.path)
            if not match or self._known(match):
                return self._answer({"error": self._known(match) if match else "Malformed request"}, 404)
            try:
                length = int(self.headers.get("Content-Length", 0))
            except ValueError:
                return self._answer({"error": "Content-Length must be a number of bytes"}, 400)
            if length > MAX_BODY_BYTES:  # refused before reading: a large JSON body takes many times its size
                self.close_connection = True
                return self._answer({"error": f"request body of {length} bytes is over the limit of "
                                              f"{MAX_BODY_BYTES} bytes; send fewer instances a request"}, 413)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError as error:
                return self._answer({"error": f"JSON Parse error: {error}"}, 400)
            except RecursionError:
                return self._answer({"error": "JSON Parse error: nested too deeply"}, 400)
            self._answer(*served.predict(body))

        def log_message(self, format, *args):  # one line per request, as TF Serving's access log
            print(f"{self.address_string()} {self.command} {self.path} {args[1] if len(args) > 1 else ''}")

    try:
        server = http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as error:  # the port is taken (often by another server), or the host is not this machine
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    server.served = served
    return server
