"""Interactive maps: stand-alone HTML that loads nothing from the network by default."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from territory import reports as R
from territory.errors import InvalidInputError

pytest.importorskip("folium")
from territory import maps, webmap


@pytest.fixture(scope="module")
def layers() -> dict:
    rng = np.random.default_rng(0)
    centres = np.array([[116.4, 39.9], [117.2, 39.1], [104.06, 30.67]])
    pts = np.concatenate([c + rng.normal(0, 0.3, (20, 2)) for c in centres])
    labels = np.repeat(["T1", "T2", "T3"], 20)
    polys = R.territory_polygons(pts, labels)
    polys["rep_id"] = ["张伟", "R<2>", "R3"]
    polys["potential"] = [100.0, 110.0, 95.5]
    polys["potential_dev"] = [-0.02, 0.05, -0.03]
    accounts = pd.DataFrame({"lon": pts[:, 0], "lat": pts[:, 1], "label": labels,
                             "popup": [f"药房 {i}\n<script>alert(1)</script>"
                                       for i in range(len(pts))]})
    homes = pd.DataFrame({"rep_id": ["张伟", "R<2>", "R3"], "home_lon": centres[:, 0],
                          "home_lat": centres[:, 1], "name": ["张伟", "李娜", "王芳"]})
    ids = pd.DataFrame({"account_id": [str(i) for i in range(len(pts))],
                        "lon": pts[:, 0], "lat": pts[:, 1]})
    sched = pd.DataFrame({"rep_id": ["张伟"] * 3, "day": [0, 0, 1], "sequence": [1, 2, 1],
                          "account_id": ["0", "1", "2"]})
    routes = R.route_lines(sched, ids, homes)
    return {"territories": polys, "accounts": accounts, "homes": homes, "routes": routes,
            "points": pts, "labels": labels}


class _Collector(HTMLParser):
    """Every attribute value of every tag, and the text of style blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_endtag(self, tag):
        self._tag = ""

    def handle_data(self, data):
        if self._tag == "style":
            self.styles.append(data)
        elif self._tag == "script":
            self.scripts.append(data)


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_offline_map_loads_nothing_remote(tmp_path, layers) -> None:
    path = webmap.interactive_map(
        tmp_path / "maps" / "plan.html", territories=layers["territories"],
        accounts=layers["accounts"], homes=layers["homes"], routes=layers["routes"],
        title="华北 <plan>")
    page = path.read_text(encoding="utf-8")
    parsed = _parse(page)
    for tag, name, value in parsed.attrs:
        if name in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", value, re.I), (tag, name, value)
    assert not any(tag in ("link", "img", "iframe") for tag, _, _ in parsed.attrs)
    assert not any(name == "src" for _, name, _ in parsed.attrs)  # every script inline
    for css in parsed.styles:
        assert "@import" not in css
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", css, re.I)
        assert not re.search(r"url\(\s*['\"]?images/", css)  # no relative file fetches
    assert webmap.external_resources(page) == []
    # The inlined Leaflet, its licence, and the map itself.
    assert "Leaflet 1.9.4" in page and "Volodymyr Agafonkin" in page
    assert "L.map(" in page
    assert "jquery" not in page.lower() and "$(" not in "".join(parsed.scripts[1:])
    # Besides Leaflet's own code (which names its home page), no URL at all.
    ours = page.replace(webmap._leaflet_assets()[0], "").replace(webmap._leaflet_assets()[1],
                                                                 "")
    assert not re.search(r"https?://", ours)
    # Chinese text intact, user text escaped.
    assert "华北 &lt;plan&gt;" in page and "<plan>" not in page
    assert "张伟" in page and "R&lt;2&gt;" in page
    assert "<script>alert(1)</script>" not in page
    for layer in ("Territories", "Accounts", "Routes", "Rep homes", "Provinces"):
        assert f'"{layer}"' in page  # a toggle in the layer control
    assert "L.control.layers" in page


def test_tiles_are_opt_in(tmp_path, layers) -> None:
    path = webmap.interactive_map(tmp_path / "osm.html", territories=layers["territories"],
                                  tiles="OpenStreetMap")
    page = path.read_text(encoding="utf-8")
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in page
    assert "OpenStreetMap" in page  # the attribution
    assert webmap.external_resources(page) == []  # tiles load from JS, no tags
    custom = webmap.interactive_map(
        tmp_path / "c.html", tiles="https://tiles.example.com/{z}/{x}/{y}.png",
        tiles_attribution="© Example")
    assert "tiles.example.com/{z}/{x}/{y}.png" in custom.read_text(encoding="utf-8")
    with pytest.raises(InvalidInputError, match="attribution"):
        webmap.interactive_map(tmp_path / "x.html", tiles="https://t.example.com/{z}/{x}/{y}")


def test_map_without_layers_and_bad_input(tmp_path, layers) -> None:
    page = webmap.interactive_map(tmp_path / "empty.html", provinces=False).read_text(
        encoding="utf-8")
    assert "L.map(" in page and webmap.external_resources(page) == []
    with pytest.raises(InvalidInputError, match="label_column"):
        webmap.interactive_map(tmp_path / "x.html", territories=layers["territories"],
                               label_column="name")
    with pytest.raises(InvalidInputError, match="lon/lat"):
        webmap.interactive_map(tmp_path / "x.html", accounts=pd.DataFrame({"x": [1.0]}))


def test_external_resources_finds_cdn_links() -> None:
    page = ('<html><head><script src="https://cdn.example.com/a.js"></script>'
            '<link rel="stylesheet" href="//cdn.example.com/b.css"/>'
            '<style>@import url("https://x.example.com/c.css"); .a{background:url(d.png)}'
            '</style></head><body><a href="https://example.com">credit</a></body></html>')
    found = set(webmap.external_resources(page))
    assert found == {"https://cdn.example.com/a.js", "//cdn.example.com/b.css",
                     "https://x.example.com/c.css"}  # not the credit link, not d.png


def test_static_map_draws_territories(tmp_path, layers) -> None:
    pytest.importorskip("matplotlib")
    out = maps.static_map(tmp_path / "t.png", points=layers["points"],
                          labels=layers["labels"], label_kind="territory",
                          territories=layers["territories"], homes=layers["homes"][
                              ["home_lon", "home_lat"]].to_numpy(), title="territories",
                          dpi=50)
    assert out.stat().st_size > 5_000
    # The old signature still works.
    assert maps.static_map(tmp_path / "p.png", points=layers["points"], dpi=50).is_file()
