"""Interactive HTML maps (folium, the ``viz`` extra) that work offline.

Field managers open these maps on laptops in hotels and trains, and many corporate networks in
China block foreign CDNs, so the file must stand alone: Leaflet's JavaScript and CSS (vendored
in ``territory/_static/leaflet``, BSD-2-Clause) are inlined, folium's CDN links (jQuery,
Bootstrap, Font Awesome, awesome-markers) are left out, and only plain Leaflet features are
used: GeoJSON layers, circle markers (image markers would fetch PNGs), tooltips, popups and the
layer control. By default no tile server is contacted either: the bundled province polygons
are the base map. ``tiles="OpenStreetMap"`` (or a URL template with its attribution) adds a
tile layer for readers who are online.

The bundled boundaries are Natural Earth's de facto ones, not the PRC standard map; maps for
publication in mainland China need an approved base map (审图号).
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import math
import os
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from territory import china
from territory.errors import InvalidInputError
from territory.reports import PALETTE, territory_colours

__all__ = ["external_resources", "interactive_map"]

ATTRIBUTION = "Boundaries: Natural Earth (de facto, not an official map of China)"
_CHINA_BOUNDS = ((17.5, 72.5), (54.0, 135.5))  # (lat, lon) corners
_MAX_TOOLTIP_FIELDS = 12
_MAX_LEGEND_ROWS = 30


def _folium() -> Any:
    try:
        import folium
        import folium.features  # GeoJsonTooltip, GeoJsonPopup live here
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("interactive maps need folium: pip install "
                          "'territory-planner[viz]'") from exc
    return folium


@functools.lru_cache(maxsize=1)
def _leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS, ready to inline."""
    folder = importlib.resources.files("territory") / "_static" / "leaflet"
    js = (folder / "leaflet.js").read_text(encoding="utf-8")
    css = (folder / "leaflet.css").read_text(encoding="utf-8")
    licence = (folder / "LICENSE").read_text(encoding="utf-8").replace("*/", "* /")
    # BSD-2-Clause: every copy of Leaflet, so every saved map, carries its licence text.
    js = f"/*!\n{licence}*/\n{js}"
    # The source map is not shipped; a browser's developer tools would try to fetch it.
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)
    # Relative image URLs (layer-control icon, default marker) cannot resolve next to a
    # stand-alone file; the map uses neither (expanded layer control, circle markers).
    css = re.sub(r"url\(\s*['\"]?images/[^)]*\)", "none", css)
    if "</script" in js.lower() or "</style" in css.lower():  # would end the inline block
        raise RuntimeError("the vendored Leaflet cannot be inlined safely")
    return js, css


@functools.lru_cache(maxsize=1)
def _provinces_geojson() -> str:
    """The provinces simplified to about 1 km, coordinates to 3 decimals (about 100 m): a
    few hundred kB instead of the bundled file's detail."""
    frame = china.provinces()
    geoms = shapely.simplify(frame.geometry.to_numpy(), 0.01, preserve_topology=True)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, 3))
    features = [{"type": "Feature", "id": str(code),
                 "properties": {"name": f"{zh} {en}"},
                 "geometry": shapely.geometry.mapping(g)}
                for code, zh, en, g in zip(frame["code"], frame["name_zh"], frame["name_en"],
                                           geoms, strict=True)]
    return json.dumps({"type": "FeatureCollection", "features": features},
                      ensure_ascii=False)


def _fmt(column: str, value: Any) -> str:
    """A table value as tooltip text (HTML-escaped: the tooltip inserts it as HTML)."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column.endswith(("_dev", "_pct")):
            return f"{100 * value:+.1f} %" if column.endswith("_dev") else f"{100 * value:.1f} %"
        return f"{value:,.1f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return html.escape(str(value))


def _features(frame: pd.DataFrame, geoms: Sequence[Any], fields: Sequence[str],
              extra: dict[str, Sequence[Any]] | None = None, digits: int = 5
              ) -> dict[str, Any]:
    """A FeatureCollection with pre-formatted properties ``f0, f1, ...`` for ``fields``."""
    extra = extra or {}
    columns = {f: frame[f].to_numpy(dtype=object) for f in fields}
    features = []
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        props = {f"f{j}": _fmt(f, columns[f][i]) for j, f in enumerate(fields)}
        props.update({k: v[i] for k, v in extra.items()})
        g = shapely.transform(g, lambda xy: np.round(xy, digits))
        features.append({"type": "Feature", "id": str(i), "properties": props,
                         "geometry": shapely.geometry.mapping(g)})
    return {"type": "FeatureCollection", "features": features}


def _tooltip(folium: Any, fields: Sequence[str]) -> Any:
    if not fields:
        return None
    return folium.features.GeoJsonTooltip(
        fields=[f"f{j}" for j in range(len(fields))],
        aliases=[html.escape(str(f)) for f in fields], sticky=True)


def _territory_fields(frame: pd.DataFrame, label: str, wanted: Sequence[str] | None
                      ) -> list[str]:
    """Tooltip columns: the label, rep, accounts and each balanced measure with its
    deviation, unless ``wanted`` names them."""
    if wanted is not None:
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise InvalidInputError(f"tooltip_columns {missing} are not columns of territories;"
                                    f" its columns are {[str(c) for c in frame.columns]}.")
        return list(wanted)
    fields = [label] + [c for c in ("rep_id", "rep_name", "accounts") if c in frame.columns]
    for col in frame.columns:
        if isinstance(col, str) and col.endswith("_dev"):
            measure = col[:-4]
            fields += [c for c in (measure, col) if c in frame.columns and c not in fields]
    for col in ("travel_km", "work_h", "work_hours", "contiguous"):
        if col in frame.columns and col not in fields:
            fields.append(col)
    return fields[:_MAX_TOOLTIP_FIELDS]


def _lonlat_columns(frame: pd.DataFrame, what: str, prefer: Sequence[tuple[str, str]]
                    ) -> tuple[np.ndarray, np.ndarray]:
    for lon, lat in prefer:
        if lon in frame.columns and lat in frame.columns:
            return (pd.to_numeric(frame[lon], errors="coerce").to_numpy(dtype=float),
                    pd.to_numeric(frame[lat], errors="coerce").to_numpy(dtype=float))
    names = " or ".join(f"{a}/{b}" for a, b in prefer)
    raise InvalidInputError(f"{what}: no {names} columns; its columns are "
                            f"{[str(c) for c in frame.columns]}.")


class _ResourceScanner(HTMLParser):
    """Collects the URLs a browser would fetch: src/href of tags, CSS url() and @import."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            # <a href> is a link the reader may click, not a resource the page loads.
            if value and (name == "src" or (name == "href" and tag != "a")):
                self.urls.append(value)
            if name == "style" and value:
                self._css(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
        self.urls += re.findall(r"@import\s+(?:url\()?\s*['\"]?([^'\";)\s]+)", text)


def external_resources(page: str) -> list[str]:
    """The remote URLs (``http(s)://`` or ``//host``) an HTML page loads by itself: script and
    image sources, stylesheet links, CSS ``url()`` and ``@import``. Links the reader may click
    (``<a href>``) and URLs inside scripts (such as a tile URL template) are not counted."""
    scanner = _ResourceScanner()
    scanner.feed(page)
    return [u for u in scanner.urls if re.match(r"^\s*(https?:)?//", u, flags=re.I)]


def interactive_map(
    path: str | os.PathLike[str],
    *,
    territories: Any = None,
    accounts: pd.DataFrame | None = None,
    homes: pd.DataFrame | None = None,
    routes: Any = None,
    provinces: bool = True,
    tiles: str | None = None,
    tiles_attribution: str | None = None,
    title: str | None = None,
    label_column: str = "territory",
    tooltip_columns: Sequence[str] | None = None,
) -> Path:
    """Write a stand-alone HTML map of territories, accounts, rep homes and routes.

    The file needs no network: Leaflet is inlined and nothing is fetched unless ``tiles`` asks
    for a tile layer. Territories are coloured so that neighbours differ; accounts and routes
    take their territory's (rep's) colour. Every layer can be switched on and off; a box in
    the lower left shows the title, the counts and the legend.

    Parameters
    ----------
    path:
        The ``.html`` file; parent folders are created.
    territories:
        GeoDataFrame of territory polygons (e.g. ``reports.territory_polygons`` joined with
        the territory table) with a ``label_column``; ``rep_id``, ``accounts``, measures and
        their ``*_dev`` columns (fractions) appear in the tooltip.
    accounts:
        Table with ``lon``, ``lat`` and optional ``label`` (territory label: takes that
        territory's colour) and ``popup`` (plain text shown on click).
    homes:
        Table with ``home_lon``/``home_lat`` (or ``lon``/``lat``), optional ``rep_id`` (or
        ``id``) and ``name``, drawn as white circles.
    routes:
        GeoDataFrame of lines (``reports.route_lines``); ``rep_id``, ``day``, ``date``,
        ``visits``, ``line_km``, ``km`` appear in the tooltip.
    provinces:
        Draw the bundled province borders (the base map when there are no tiles).
    tiles:
        None (offline), ``"OpenStreetMap"`` (or another xyzservices name) or a URL template
        such as ``"https://tiles.example.com/{z}/{x}/{y}.png"``, which needs
        ``tiles_attribution``.
    title:
        Shown in the legend box and as the page title.
    label_column:
        The territories' label column (default ``territory``).
    tooltip_columns:
        Territory columns for the tooltip; default the label, rep, accounts, each measure with
        a ``*_dev`` column and its deviation.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ImportError
        folium (the ``viz`` extra) is not installed.
    InvalidInputError
        A table lacks its coordinate or label columns, or a tile URL has no attribution.
    """
    folium = _folium()
    from branca.element import Element

    m = folium.Map(location=[35.0, 104.0], zoom_start=4, tiles=None, prefer_canvas=True,
                   control_scale=True)
    # folium would link Leaflet, jQuery, Bootstrap and Font Awesome from CDNs; the features
    # used here need Leaflet alone, which is inlined below.
    m.default_js = []
    m.default_css = []
    figure = m.get_root()
    js, css = _leaflet_assets()
    figure.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
    figure.header.add_child(Element(f"<script>{js}</script>"), name="leaflet_js")
    figure.header.add_child(Element(f"<style>{_PAGE_CSS}</style>"), name="territory_css")
    if title:
        figure.header.add_child(Element(f"<title>{html.escape(title)}</title>"), name="title")
    if tiles is None:
        figure.header.add_child(Element("<style>.leaflet-container{background:#dce8f0;}"
                                        "</style>"), name="sea")
    else:
        _add_tiles(folium, m, tiles, tiles_attribution)

    bounds: list[tuple[float, float, float, float]] = []
    if provinces:
        land = "#f4f2ec" if tiles is None else "#000000"
        folium.GeoJson(
            json.loads(_provinces_geojson()), name="Provinces", overlay=True, control=True,
            style_function=lambda _f, land=land, tiles=tiles: {
                "color": "#8c8c8c", "weight": 0.8, "fillColor": land,
                "fillOpacity": 1.0 if tiles is None else 0.0},
            interactive=False, attribution=html.escape(ATTRIBUTION),
        ).add_to(m)

    colour_of_label: dict[str, str] = {}
    colour_of_rep: dict[str, str] = {}
    legend_rows: list[tuple[str, str]] = []
    n_territories = 0
    if territories is not None:
        gdf = _as_gdf(territories, "territories")
        if label_column not in gdf.columns:
            raise InvalidInputError(
                f"territories has no {label_column!r} column; its columns are "
                f"{[str(c) for c in gdf.columns]}.", hint="Pass label_column='your column'.")
        gdf = gdf.loc[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        n_territories = len(gdf)
        colours = territory_colours(gdf.geometry.to_numpy())
        labels = gdf[label_column].map(str).tolist()
        colour_of_label = dict(zip(labels, colours, strict=True))
        if "rep_id" in gdf.columns:
            colour_of_rep = {str(r): c for r, c in zip(gdf["rep_id"], colours, strict=True)
                             if not pd.isna(r) and str(r)}
        reps = gdf["rep_id"].map(str).tolist() if "rep_id" in gdf.columns else [""] * len(gdf)
        legend_rows = [(c, f"{lab}" + (f" · {rep}" if rep and rep != "nan" else ""))
                       for lab, rep, c in zip(labels, reps, colours, strict=True)]
        fields = _territory_fields(gdf, label_column, tooltip_columns)
        data = _features(gdf, gdf.geometry.to_numpy(), fields, {"_colour": colours})
        folium.GeoJson(
            data, name="Territories", overlay=True, control=True,
            style_function=lambda f: {"color": "#444444", "weight": 1.0,
                                      "fillColor": f["properties"]["_colour"],
                                      "fillOpacity": 0.45},
            highlight_function=lambda _f: {"weight": 3.0, "fillOpacity": 0.7},
            tooltip=_tooltip(folium, fields),
        ).add_to(m)
        if len(gdf):
            bounds.append(tuple(gdf.total_bounds))

    n_routes = 0
    if routes is not None:
        gdf = _as_gdf(routes, "routes")
        gdf = gdf.loc[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        n_routes = len(gdf)
        reps = (gdf["rep_id"].map(str).tolist() if "rep_id" in gdf.columns
                else [""] * len(gdf))
        colours = _colours_for(reps, colour_of_rep)
        fields = [c for c in ("rep_id", "day", "date", "visits", "line_km", "km")
                  if c in gdf.columns]
        data = _features(gdf, gdf.geometry.to_numpy(), fields, {"_colour": colours})
        folium.GeoJson(
            data, name="Routes", overlay=True, control=True,
            style_function=lambda f: {"color": f["properties"]["_colour"], "weight": 2.0,
                                      "opacity": 0.85},
            highlight_function=lambda _f: {"weight": 4.0, "opacity": 1.0},
            tooltip=_tooltip(folium, fields),
        ).add_to(m)
        if len(gdf):
            bounds.append(tuple(gdf.total_bounds))

    n_accounts = 0
    if accounts is not None:
        lon, lat = _lonlat_columns(accounts, "accounts", [("lon", "lat")])
        ok = np.isfinite(lon) & np.isfinite(lat)
        frame = accounts.loc[ok]
        n_accounts = len(frame)
        labels = (frame["label"].map(lambda v: "" if pd.isna(v) else str(v)).tolist()
                  if "label" in frame.columns else [""] * n_accounts)
        colours = _colours_for(labels, colour_of_label)
        fields = ["label"] if "label" in frame.columns else []
        extra: dict[str, Sequence[Any]] = {"_colour": colours}
        if "popup" in frame.columns:
            extra["popup"] = [html.escape(str(v)).replace("\n", "<br>") if not pd.isna(v)
                              else "" for v in frame["popup"]]
        points = shapely.points(lon[ok], lat[ok])
        data = _features(frame, points, fields, extra, digits=6)
        radius = float(np.clip(8.0 / max(n_accounts, 1) ** 0.25, 2.0, 5.0))
        folium.GeoJson(
            data, name="Accounts", overlay=True, control=True,
            marker=folium.CircleMarker(radius=radius, fill=True),
            style_function=lambda f: {"color": "#333333", "weight": 0.5,
                                      "fillColor": f["properties"]["_colour"],
                                      "fillOpacity": 0.9},
            tooltip=_tooltip(folium, fields),
            popup=(folium.features.GeoJsonPopup(fields=["popup"], labels=False)
                   if "popup" in frame.columns else None),
        ).add_to(m)
        if n_accounts:
            bounds.append((float(lon[ok].min()), float(lat[ok].min()),
                           float(lon[ok].max()), float(lat[ok].max())))

    n_homes = 0
    if homes is not None:
        lon, lat = _lonlat_columns(homes, "homes", [("home_lon", "home_lat"), ("lon", "lat")])
        ok = np.isfinite(lon) & np.isfinite(lat)
        frame = homes.loc[ok]
        n_homes = len(frame)
        key = next((c for c in ("rep_id", "id") if c in frame.columns), None)
        reps = frame[key].map(str).tolist() if key else [""] * n_homes
        colours = _colours_for(reps, colour_of_rep, default="#ffffff")
        fields = [c for c in (key, "name") if c and c in frame.columns]
        data = _features(frame, shapely.points(lon[ok], lat[ok]), fields,
                         {"_colour": colours}, digits=6)
        folium.GeoJson(
            data, name="Rep homes", overlay=True, control=True,
            marker=folium.CircleMarker(radius=6, fill=True),
            style_function=lambda f: {"color": "#000000", "weight": 2.0,
                                      "fillColor": f["properties"]["_colour"],
                                      "fillOpacity": 1.0},
            tooltip=_tooltip(folium, fields),
        ).add_to(m)
        if n_homes:
            bounds.append((float(lon[ok].min()), float(lat[ok].min()),
                           float(lon[ok].max()), float(lat[ok].max())))

    folium.LayerControl(collapsed=False).add_to(m)
    if bounds:
        box = np.array(bounds, dtype=float)
        m.fit_bounds([[box[:, 1].min(), box[:, 0].min()], [box[:, 3].max(), box[:, 2].max()]])
    else:
        m.fit_bounds([list(_CHINA_BOUNDS[0]), list(_CHINA_BOUNDS[1])])
    counts = [(n_territories, "territories"), (n_accounts, "accounts"), (n_homes, "reps"),
              (n_routes, "route days")]
    figure.html.add_child(Element(_legend_html(title, counts, legend_rows, tiles is None)),
                          name="legend")

    page = figure.render()
    if tiles is None:
        remote = external_resources(page)
        if remote:  # a folium upgrade that adds CDN links must not silently break offline use
            raise RuntimeError(f"the offline map would load {remote}; please report this")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _as_gdf(value: Any, what: str) -> Any:
    import geopandas as gpd

    if not isinstance(value, gpd.GeoDataFrame):
        raise InvalidInputError(f"{what} must be a GeoDataFrame, got {type(value).__name__}.")
    if value.crs is not None and not value.crs.equals("EPSG:4326"):
        value = value.to_crs("EPSG:4326")
    return value


def _colours_for(keys: Sequence[str], known: dict[str, str], default: str | None = None
                 ) -> list[str]:
    """The known colour of each key, else a palette colour per distinct key (or default)."""
    extra: dict[str, str] = {}
    out = []
    for k in keys:
        if k in known:
            out.append(known[k])
        elif default is not None:
            out.append(default)
        else:
            if k not in extra:
                extra[k] = PALETTE[len(extra) % len(PALETTE)]
            out.append(extra[k])
    return out


def _add_tiles(folium: Any, m: Any, tiles: str, attribution: str | None) -> None:
    if "{" in tiles and not attribution:
        raise InvalidInputError(
            f"tiles={tiles!r} needs tiles_attribution: tile providers require credit.",
            hint="e.g. tiles_attribution='© OpenStreetMap contributors'.")
    try:
        layer = folium.TileLayer(tiles=tiles, attr=attribution, name=(
            tiles if "{" not in tiles else "Tiles"), overlay=False, control=True)
    except ValueError as exc:
        raise InvalidInputError(f"tiles={tiles!r}: {exc}",
                                hint="Use 'OpenStreetMap' or a URL template with {z}/{x}/{y}."
                                ) from None
    layer.add_to(m)


_PAGE_CSS = """
.tp-legend{position:fixed;left:10px;bottom:40px;z-index:1000;background:rgba(255,255,255,.92);
 padding:8px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);
 font:12px/1.4 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
 max-height:45%;max-width:280px;overflow:auto;}
.tp-legend h4{margin:0 0 4px 0;font-size:14px;}
.tp-legend .sw{display:inline-block;width:12px;height:12px;margin-right:6px;
 vertical-align:middle;border:1px solid #444;}
.tp-legend .dot{border-radius:50%;}
.tp-legend .note{color:#666;margin-top:4px;}
"""


def _legend_html(title: str | None, counts: Sequence[tuple[int, str]],
                 rows: Sequence[tuple[str, str]], offline: bool) -> str:
    parts = ['<div class="tp-legend">']
    if title:
        parts.append(f"<h4>{html.escape(title)}</h4>")
    shown = [f"{n:,} {what}" for n, what in counts if n]
    if shown:
        parts.append(f"<div>{' · '.join(shown)}</div>")
    for colour, text in rows[:_MAX_LEGEND_ROWS]:
        parts.append(f'<div><span class="sw" style="background:{html.escape(colour)}">'
                     f"</span>{html.escape(text)}</div>")
    if len(rows) > _MAX_LEGEND_ROWS:
        parts.append(f"<div>… and {len(rows) - _MAX_LEGEND_ROWS} more territories</div>")
    if any(what == "reps" and n for n, what in counts):
        parts.append('<div><span class="sw dot" style="background:#fff;border:2px solid #000">'
                     "</span>rep home</div>")
    parts.append(f'<div class="note">{html.escape(ATTRIBUTION)}'
                 + (" · offline map" if offline else "") + "</div>")
    parts.append("</div>")
    return "".join(parts)
