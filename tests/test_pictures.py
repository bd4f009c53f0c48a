"""What an inspector looks at: overlays at the image's own resolution, the run's and predict's HTML
reports, and the page `anomzoo serve` answers on `/`, the last two opened in headless Chromium."""

import base64
import json
import re
import shutil
import threading

import cv2
import keras
import numpy as np
import pytest

from anomzoo import cli, evaluation
from anomzoo.data import load_dataset
from anomzoo.data.mvtec import read_image
from anomzoo.export import export, open_trained
from anomzoo.export.server import make_server
from anomzoo.models import build_model
from anomzoo.report import write_report
from anomzoo.report.overlay import heat_overlay, inspection_figure


def blob_map(size=16, top=5, left=9, side=4):
    """A model-sized map: zero but for one square of ones."""
    values = np.zeros((size, size, 1), np.float32)
    values[top:top + side, left:left + side] = 1.0
    return values


@pytest.mark.parametrize("channels", [1, 3])
def test_the_overlay_has_the_image_size_and_outlines_the_region_above_the_threshold(channels):
    rng = np.random.default_rng(0)
    image = rng.integers(40, 120, (200, 300, channels), dtype=np.uint8)
    overlay = heat_overlay(image, blob_map(), map_threshold=0.5)
    assert overlay.shape == (200, 300, 3) and overlay.dtype == np.uint8
    white = np.all(overlay == 255, axis=-1)
    rows, cols = np.nonzero(white)
    # the square covers rows 5-8 and columns 9-12 of 16: rows 62-112, columns 169-244 of the image
    assert white.sum() > 100
    assert 55 <= rows.min() and rows.max() <= 120 and 160 <= cols.min() and cols.max() <= 252
    # where the map is 0 the picture shows unchanged (a gray image as gray)
    far = np.repeat(image[..., :1], 3, -1) if channels == 1 else image
    np.testing.assert_array_equal(overlay[:40, :100], far[:40, :100])
    inside = overlay[80:95, 195:220].astype(int)
    assert np.abs(inside - far[80:95, 195:220]).mean() > 40  # the heat covers the region


def test_the_figure_shows_the_image_at_its_own_size_with_the_truth(tmp_path):
    image = np.full((400, 300, 3), 90, np.uint8)
    mask = np.zeros((400, 300), np.uint8)
    mask[100:150, 200:260] = 1
    inspection_figure(tmp_path / "f.png", image, blob_map(), map_threshold=0.5, score=2.0, score_threshold=1.0,
                      mask=mask, title="part 7")
    figure = cv2.imread(str(tmp_path / "f.png"))[..., ::-1]
    assert figure.shape[0] >= 400 and figure.shape[1] >= 3 * 300  # three panels at 1:1
    assert np.all(figure == (0, 255, 0), axis=-1).sum() > 150  # the ground truth's outline
    small = np.full((28, 28, 1), 90, np.uint8)  # a digit is enlarged to stay readable
    inspection_figure(tmp_path / "s.png", small, blob_map(), map_threshold=0.5)
    assert cv2.imread(str(tmp_path / "s.png")).shape[0] >= 256


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them where it can)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium drives Chromium (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--force-device-scale-factor=1", "--window-size=1500,1400"):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    yield session
    session.quit()


def wait_for(browser, script, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda b: b.execute_script(script))


def element_pixels(element):
    element.parent.execute_script("arguments[0].scrollIntoView()", element)  # a screenshot shows the viewport
    png = np.frombuffer(element.screenshot_as_png, np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_COLOR)[..., ::-1]


def all_images_drawn(browser):
    return browser.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0) && document.images.length")


@pytest.fixture(scope="module")
def tiny_model(tire_root, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model("sagan", "tiny", image_shape=(32, 32, 3))
    root = tmp_path_factory.mktemp("pictures")
    model.save(root / "model.keras")
    return model, root


def test_the_run_report_opens_in_a_browser_with_the_worst_images_at_full_size(tiny_model, tire_root, tmp_path,
                                                                            browser):
    model, _ = tiny_model
    data = load_dataset(tire_root, image_size=32)
    results, predictions = evaluation.evaluate_model(model, data)
    write_report(tmp_path, results, {"model": "sagan", "dataset": str(tire_root), "target": None}, data, predictions)
    page = (tmp_path / "report.html").read_text()
    figures = re.findall(r'<figure><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    assert len(figures) == 8 and "image_auroc" in page and "Provenance" in page
    first = cv2.imdecode(np.frombuffer(base64.b64decode(figures[0]), np.uint8), cv2.IMREAD_COLOR)
    original = read_image(data.test.paths[np.argmax(np.where(data.test.labels == 0, predictions["score"], -np.inf))])
    assert first.shape[0] > original.shape[0] and first.shape[1] > 2 * original.shape[1]  # 1:1, not 32 px

    browser.get((tmp_path / "report.html").as_uri())
    assert all_images_drawn(browser) == 2 + 8  # ROC, histogram and the figures, decoded by the browser
    shown = browser.find_elements("css selector", "figure img")[0]
    assert shown.size["width"] == first.shape[1]
    np.testing.assert_allclose(element_pixels(shown).mean(axis=(0, 1)), first[..., ::-1].mean(axis=(0, 1)), atol=2)


def test_predict_writes_an_html_page_of_its_overlays(tiny_model, tire_root, tmp_path, browser):
    _, root = tiny_model
    files = sorted((tire_root / "test" / "hole").glob("00[0-2].png"))
    broken = tmp_path / "<b>broken.png"
    broken.write_bytes(b"not an image")
    assert cli.main(["predict", str(root / "model.keras"), *map(str, files), str(broken),
                     "--out", str(tmp_path / "p")]) == 1
    page = (tmp_path / "p" / "report.html").read_text()
    assert "<b>broken" not in page and "&lt;b&gt;broken" in page  # file names are escaped
    browser.get((tmp_path / "p" / "report.html").as_uri())
    # The page loads its overlays lazily (a folder can hold thousands): load them all, then wait.
    browser.execute_script("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    wait_for(browser, "return Array.from(document.images).every(i => i.complete)")
    assert all_images_drawn(browser) == 3  # the overlays beside the page
    assert "unreadable" in browser.find_element("tag name", "body").text


@pytest.fixture(scope="module")
def served(tiny_model, tire_root):
    model, root = tiny_model
    metadata = export(open_trained(root / "model.keras", dataset=str(tire_root)), root / "export",
                      formats=["saved_model"])
    server = make_server(root / "export", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, metadata
    server.shutdown()
    server.server_close()


def test_the_page_scores_an_uploaded_image_and_draws_its_map_over_it(served, tire_root, browser):
    server, metadata = served
    browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
    assert metadata["name"] in browser.find_element("id", "model").text
    image_file = tire_root / "test" / "cut" / "000.png"
    browser.find_element("id", "files").send_keys(str(image_file))
    wait_for(browser, "return document.querySelector('.card[data-done]')")
    card = browser.find_element("css selector", ".card")
    expected, status = server.served.predict(
        {"signature_name": "serve_bytes", "instances": [{"b64": base64.b64encode(image_file.read_bytes()).decode()}]})
    assert status == 200
    prediction = expected["predictions"][0]
    verdict = card.find_element("css selector", ".verdict").text
    assert verdict == ("ANOMALOUS" if prediction["is_anomalous"] else "NORMAL")
    assert f"{prediction['score']:.4g}"[:4] in card.find_element("css selector", ".score").text

    # The screenshot shows the overlay `anomzoo predict` draws: same colours, same outline.
    original = read_image(image_file)
    drawn = element_pixels(card.find_element("css selector", "canvas.overlay"))
    wanted = heat_overlay(original, np.asarray(prediction["anomaly_map"]), metadata["map_threshold"])
    assert drawn.shape == wanted.shape == (*original.shape[:2], 3)
    difference = np.abs(drawn.astype(int) - wanted)
    assert difference.mean() < 1.5 and np.mean(difference.max(axis=-1) > 12) < 0.01
    assert np.abs(drawn.astype(int) - original).mean() > 3  # the heat is there, not only the photo


def test_the_page_shows_the_servers_error_for_a_file_that_is_not_an_image(served, tmp_path, browser):
    server, _ = served
    browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image")
    browser.find_element("id", "files").send_keys(str(text_file))
    wait_for(browser, "return document.querySelector('.card[data-done]')")
    error = browser.find_element("css selector", ".card .error").text
    assert error and "VERDICT" not in error.upper()
    config = json.loads(re.search(r"const CONFIG = (.*);", browser.page_source).group(1))
    assert config["map_threshold"] == pytest.approx(server.served.metadata["map_threshold"])
