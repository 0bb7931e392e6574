"""Static maps (matplotlib, the ``viz`` extra): provinces, accounts, territories, rep homes.

The bundled boundaries are Natural Earth's de facto ones, not the PRC standard map; maps for
publication in mainland China need an approved base map (审图号). The credit line is drawn on
every map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from territory import china

__all__ = ["static_map"]

ATTRIBUTION = "Boundaries: Natural Earth. Places: GeoNames (CC BY 4.0)."


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("static maps need matplotlib: pip install 'territory-planner[viz]'"
                          ) from exc
    return plt


def static_map(
    path: str | Path,
    *,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    homes: np.ndarray | None = None,
    home_labels: list[str] | None = None,
    title: str = "",
    label_kind: str = "category",
    extent: tuple[float, float, float, float] | None = None,
    province_labels: bool = True,
    dpi: int = 150,
    point_size: float | None = None,
    territories: Any = None,
    territory_label_column: str = "territory",
    territory_labels: bool = True,
) -> Path:
    """Draw provinces, territories, points coloured by ``labels`` and rep homes; save a PNG.

    Parameters
    ----------
    points:
        (n, 2) lon/lat of accounts.
    labels:
        Per-point category (segment, territory index...) used for colour.
    homes:
        (r, 2) lon/lat of rep homes, drawn as black triangles.
    label_kind:
        ``"category"`` draws a legend when there are few categories; ``"territory"`` cycles a
        qualitative palette and draws no legend.
    extent:
        (lon0, lon1, lat0, lat1); default: all provinces, or the points' (else the
        territories') box when they cover a small area.
    territories:
        GeoDataFrame of territory polygons (e.g. ``reports.territory_polygons``), drawn under
        the points in a qualitative palette where neighbours differ, with the province
        borders on top. With ``label_kind="territory"`` and labels equal to the polygons'
        ``territory_label_column``, each point takes its territory's colour.
    territory_label_column:
        The territories' label column.
    territory_labels:
        Write each territory's label at a point inside it (up to 60 territories).
    """
    plt = _pyplot()
    provinces = china.provinces()
    fig, ax = plt.subplots(figsize=(11, 8.5))
    provinces.plot(ax=ax, facecolor="#f3f1ea", edgecolor="#8a8a8a", linewidth=0.4)
    colour_of_label: dict[str, Any] = {}
    terr = None
    if territories is not None and len(territories):
        terr = _territory_layer(territories)
        colours = _territory_colours(terr)
        terr.plot(ax=ax, color=colours, alpha=0.45, edgecolor="#444444", linewidth=0.5)
        # Province borders stay readable over the territory fills.
        provinces.boundary.plot(ax=ax, color="#8a8a8a", linewidth=0.4)
        if territory_label_column in terr.columns:
            colour_of_label = dict(zip(terr[territory_label_column].map(str), colours,
                                       strict=True))
    if points is not None and len(points):
        pts = np.asarray(points, dtype=float)
        size = point_size if point_size is not None else float(
            np.clip(600.0 / np.sqrt(len(pts)), 0.3, 10.0))
        if labels is None:
            ax.scatter(pts[:, 0], pts[:, 1], s=size, c="#1f77b4", linewidths=0, alpha=0.7)
        else:
            labels = np.asarray(labels)
            cats, inv = np.unique(labels.astype(str), return_inverse=True)
            cmap = plt.get_cmap("tab20" if label_kind == "territory" or len(cats) > 10
                                else "tab10")
            if label_kind == "territory" and colour_of_label:
                colours = [colour_of_label.get(c, "#7f7f7f") for c in cats]
                ax.scatter(pts[:, 0], pts[:, 1], s=size, c=[colours[k] for k in inv],
                           linewidths=0.2, edgecolors="#333333", alpha=0.9)
            elif label_kind == "territory":
                # Neighbouring territories usually have consecutive numbers: scramble colours.
                perm = np.random.default_rng(3).permutation(len(cats))
                colours = cmap((perm[inv] % cmap.N) / max(cmap.N - 1, 1))
                ax.scatter(pts[:, 0], pts[:, 1], s=size, c=colours, linewidths=0, alpha=0.85)
            else:
                # The first category (e.g. segment A) is drawn last, so it stays on top.
                for k in range(len(cats) - 1, -1, -1):
                    cat = cats[k]
                    sel = inv == k
                    ax.scatter(pts[sel, 0], pts[sel, 1], s=size, color=cmap(k % cmap.N),
                               linewidths=0, alpha=0.8, label=f"{cat} ({int(sel.sum())})")
                if len(cats) <= 12:
                    ax.legend(loc="lower left", markerscale=max(1.0, 6.0 / size), fontsize=8,
                              frameon=True)
    if homes is not None and len(homes):
        h = np.asarray(homes, dtype=float)
        ax.scatter(h[:, 0], h[:, 1], marker="^", s=14, c="black", linewidths=0,
                   label="rep home")
        if home_labels is not None and len(h) <= 60:
            for (x, y), t in zip(h, home_labels, strict=True):
                ax.annotate(t, (x, y), fontsize=5, xytext=(2, 2), textcoords="offset points")
    if terr is not None and territory_labels and territory_label_column in terr.columns \
            and len(terr) <= 60:
        for label, geom in zip(terr[territory_label_column], terr.geometry, strict=True):
            c = geom.representative_point()
            ax.annotate(str(label), (c.x, c.y), fontsize=6, ha="center", weight="bold",
                        color="#222222")
    if province_labels:
        for _, row in provinces.iterrows():
            c = row.geometry.representative_point()
            ax.annotate(row["name_en"], (c.x, c.y), fontsize=5, color="#555555", ha="center")
    if extent is None:
        extent = (72.5, 135.5, 17.5, 54.0)
        corners = []
        if points is not None and len(points):
            pts = np.asarray(points, dtype=float)
            corners += [pts.min(0), pts.max(0)]
        if terr is not None:
            b = terr.total_bounds
            corners += [np.array(b[:2]), np.array(b[2:])]
        if corners:
            lo, hi = np.min(corners, axis=0), np.max(corners, axis=0)
            if (hi - lo).max() < 20:
                pad = 0.1 * (hi - lo).max() + 0.2
                extent = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    mid_lat = 0.5 * (extent[2] + extent[3])
    ax.set_aspect(1.0 / np.cos(np.radians(mid_lat)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    if title:
        ax.set_title(title)
    ax.text(0.99, 0.01, ATTRIBUTION, transform=ax.transAxes, fontsize=6, ha="right",
            va="bottom", color="#666666")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _territory_layer(territories: Any) -> Any:
    """Territory polygons in EPSG:4326 without empty geometries."""
    gdf = territories
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    return gdf.loc[~(gdf.geometry.isna() | gdf.geometry.is_empty)]


def _territory_colours(gdf: Any) -> list[str]:
    from territory.reports import territory_colours

    return territory_colours(gdf.geometry.to_numpy())
