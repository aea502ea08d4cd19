"""The offline map: GeoJSON shapes of the city's towns and villages.

The dedicated line has no internet, so shapes ship with the project. A real county loads its
boundaries by pointing ``COMMUNITV_MAP_GEOJSON`` at a GeoJSON FeatureCollection whose features
carry the 12-digit division code in ``properties.code`` (GB/T 2260 codes as the civil-affairs
bureau publishes them; convert shapefiles with ``ogr2ogr -f GeoJSON``). Regions it lacks — and the
fictional demo city — get a plausible generated plan: towns on a jittered grid, each town's
villages as a sub-grid of it (deterministic from the codes, so every run draws the same city).
"""
from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path

#: The demo city sits on a plausible patch of the North China Plain.
LON0, LON1, LAT0, LAT1 = 113.05, 113.95, 34.05, 34.65


def _noise(*key) -> float:
    """Deterministic noise in [-1, 1] for a key."""
    h = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return int.from_bytes(h[:4], "big") / 0xFFFFFFFF * 2 - 1


def _grid(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n * 1.6)))
    return cols, math.ceil(n / cols)


def _lerp(q, u, v):
    """Bilinear point of quad q = (p00, p10, p11, p01) at (u, v)."""
    (x00, y00), (x10, y10), (x11, y11), (x01, y01) = q
    x = (1 - u) * (1 - v) * x00 + u * (1 - v) * x10 + u * v * x11 + (1 - u) * v * x01
    y = (1 - u) * (1 - v) * y00 + u * (1 - v) * y10 + u * v * y11 + (1 - u) * v * y01
    return (round(x, 5), round(y, 5))


def _ring(q, u0, u1, v0, v1, steps: int = 3):
    """A closed ring along the cell [u0,u1]×[v0,v1] of quad q, with points on each edge so that
    neighbouring cells share their borders exactly."""
    pts = []
    for i in range(steps):
        pts.append(_lerp(q, u0 + (u1 - u0) * i / steps, v0))
    for i in range(steps):
        pts.append(_lerp(q, u1, v0 + (v1 - v0) * i / steps))
    for i in range(steps):
        pts.append(_lerp(q, u1 - (u1 - u0) * i / steps, v1))
    for i in range(steps):
        pts.append(_lerp(q, u0, v1 - (v1 - v0) * i / steps))
    pts.append(pts[0])
    return [list(p) for p in pts]


def generate(city: dict, towns: list[dict]) -> dict:
    """A FeatureCollection for ``city`` ({code,name}) and ``towns`` ([{code,name,villages:[{code,name}]}])."""
    cols, rows = _grid(len(towns))
    dx, dy = (LON1 - LON0) / cols, (LAT1 - LAT0) / rows

    def node(i, j):
        edge = i in (0, cols) or j in (0, rows)
        k = 0.12 if edge else 0.28
        return (LON0 + dx * (i + k * _noise(city["code"], "x", i, j)),
                LAT1 - dy * (j + k * _noise(city["code"], "y", i, j)))

    features = []
    for n, t in enumerate(towns):
        i, j = n % cols, n // cols
        q = (node(i, j), node(i + 1, j), node(i + 1, j + 1), node(i, j + 1))
        features.append(_feature(t, "town", city["code"], [_ring(q, 0, 1, 0, 1, 6)], _lerp(q, .5, .5)))
        vs = t.get("villages", [])
        top = math.ceil(len(vs) / 2)
        for m, v in enumerate(vs):
            row = 0 if m < top else 1
            in_row = top if row == 0 else len(vs) - top
            col = m if row == 0 else m - top
            u0, u1 = col / in_row, (col + 1) / in_row
            v0, v1 = row / 2 if len(vs) > 1 else 0, (row + 1) / 2 if len(vs) > 1 else 1
            ring = _ring(q, u0, u1, v0, v1, 2)
            features.append(_feature(v, "village", t["code"], [ring], _lerp(q, (u0 + u1) / 2, (v0 + v1) / 2)))
    return {"type": "FeatureCollection", "features": features}


def _feature(r: dict, level: str, parent: str, rings, center) -> dict:
    return {"type": "Feature",
            "properties": {"code": r["code"], "name": r["name"], "level": level, "parent": parent,
                           "center": list(center)},
            "geometry": {"type": "Polygon", "coordinates": rings}}


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def shapes(city: dict, towns: list[dict], real_path: Path | None = None) -> dict:
    """The city's shapes: the real file's features where it has them, generated ones otherwise."""
    made = generate(city, towns)
    if real_path is None or not real_path.exists():
        return made
    real = {f["properties"].get("code"): f for f in _load(str(real_path), real_path.stat().st_mtime)["features"]
            if f.get("properties", {}).get("code")}
    out = []
    for f in made["features"]:
        r = real.get(f["properties"]["code"])
        if r is not None:
            props = {**f["properties"], **r["properties"]}
            if "center" not in r["properties"]:
                props["center"] = _centroid(r["geometry"]) or f["properties"]["center"]
            f = {"type": "Feature", "properties": props, "geometry": r["geometry"]}
        out.append(f)
    return {"type": "FeatureCollection", "features": out}


def _centroid(geom: dict):
    coords = geom.get("coordinates") or []
    if geom.get("type") == "MultiPolygon":
        coords = coords[0] if coords else []
    ring = coords[0] if coords else []
    if not ring:
        return None
    return [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]


def scatter_around(center, key: str, radius: float = 0.018) -> list[float]:
    """A stable point near ``center`` for something without coordinates (a household's box)."""
    a = (_noise(key, "a") + 1) * math.pi
    r = radius * (0.25 + 0.75 * abs(_noise(key, "r")))
    return [round(center[0] + r * math.cos(a), 5), round(center[1] + r * 0.8 * math.sin(a), 5)]
