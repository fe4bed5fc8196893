"""The report checker itself: it must notice a figure that does not load."""

import base64
import json

import pytest

from harness.reporting.report_check import browser, check

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _report(tmp_path, uris):
    results = {
        f"out/{name}": {"name": name, "filename": name, "mime_type": "image/png", "data_uri": uri}
        for name, uri in uris.items()
    }
    categories = {"Figures": {"Other": list(results)}}
    html = (
        "<html><body><div id='app'></div><script>"
        "document.getElementById('app').innerHTML = '<nav>Figures</nav>';</script>"
        f'<script id="results">var results = {json.dumps(results)};</script>'
        f'<script id="categories">var categories = {json.dumps(categories)};</script></body></html>'
    )
    path = tmp_path / "report.html"
    path.write_text(html)
    return path


@pytest.mark.skipif(
    browser() is None, reason="no headless Chromium (apt-get install chromium-headless-shell)"
)
def test_checker_sees_a_broken_figure(tmp_path):
    good = "data:image/png;base64," + base64.b64encode(PNG).decode()
    bad = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    assert check(_report(tmp_path, {"a.png": good}), ["a.png"]) == []
    problems = check(_report(tmp_path, {"a.png": good, "b.png": bad}), ["a.png", "c.png"])
    assert problems == ["c.png is not in the report", "figure out/b.png did not load"]
