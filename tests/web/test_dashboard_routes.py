"""The dashboard's routes: its static files, served with a strict CSP, and the words and colours
of the overview for every rate state the API returns."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.ddb_local


def body(response: Any) -> Any:
    return json.loads(response.body)


# -------------------------------------------------------------------------------- static files


def test_the_page_is_served_with_a_policy_that_allows_only_its_own_scripts(api: Any) -> None:
    response = api.http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b'src="static/app.js"' in response.body  # relative: works under an API stage
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.js", "text/javascript"), ("style.css", "text/css"), ("chart.umd.js", "text/javascript")],
)
def test_static_files_are_served_with_their_type(api: Any, name: str, content_type: str) -> None:
    response = api.http.get(f"/static/{name}")
    assert response.status_code == 200, response.body[:200]
    assert response.headers["Content-Type"].startswith(content_type)
    assert len(response.body) > 500


def test_chart_js_is_the_npm_package(api: Any) -> None:
    # Served from the copy `make install` takes of node_modules/chart.js, not a file in git.
    response = api.http.get("/static/chart.umd.js")
    assert b"Chart.js v4" in response.body[:300]


@pytest.mark.parametrize(
    "name", ["..%2Fapp.py", "missing.js", "index.py", ".hidden.js", "APP.JS", "app.js.map"]
)
def test_nothing_else_is_served(api: Any, name: str) -> None:
    response = api.http.get(f"/static/{name}")
    assert response.status_code == 404
    assert body(response)["error"]["code"] == "not_found"


def test_the_stage_root_without_a_slash_redirects_to_the_page(api: Any) -> None:
    from types import SimpleNamespace

    from chalicelib.web import routes as dashboard

    ctx = SimpleNamespace(request=SimpleNamespace(context={"path": "/api"}))
    response = dashboard.index(ctx)  # type: ignore[arg-type]
    assert response.status_code == 308
    assert response.headers["Location"] == "/api/"


# ------------------------------------------------------------------------------- overview


def test_the_overview_words_and_colours_every_rate_state_the_api_returns() -> None:
    from chalicelib.history.reports import _state
    from chalicelib.web.routes import FILES

    states = {_state(rate, (0.05, 0.10)) for rate in (0.0, 0.07, 0.2)}
    assert len(states) == 3
    script = (FILES / "overview.js").read_text()
    style = (FILES / "style.css").read_text()
    for state in states:
        assert f"{state}:" in script, state
        assert f".rate.{state} " in style, state
