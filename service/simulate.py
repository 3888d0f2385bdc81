"""Realistic simulated Rubin alerts: multi-epoch difference-flux light curves in six bands.

Each object has a ~13-month history of detections (about 80 on average). Its alerts are its
last detections, and each alert carries every earlier detection within 365 days as
prvDiaSources, as Rubin's alerts do. Objects are constant, periodic, transient or noisy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .columns import BANDS
from .decode.schema_walk import alert_record_types
from .schema_store import latest_bundled_id, load_bundled

KINDS = ("constant", "periodic", "transient", "noisy")
BAND_WEIGHTS = np.array([0.05, 0.15, 0.25, 0.25, 0.18, 0.12])
STREAM_END_MJD = 61000.0
HISTORY_SPAN_D = 400.0
NOISE_FLOOR_NJY = 180.0  # ~ 5-sigma depth of 24.5 mag


@dataclass
class SimulatedObject:
    object_id: int
    kind: str
    ra: float
    dec: float
    period: float  # days; NaN unless periodic
    mjd: np.ndarray
    band: np.ndarray  # codes into BANDS
    flux: np.ndarray
    flux_err: np.ndarray
    source_id: np.ndarray


def default_value(avro_type: Any, named: dict[str, Any]) -> Any:
    """A valid value for any Avro type: null for nullable unions, zero/empty otherwise."""
    if isinstance(avro_type, list):
        return None if "null" in avro_type else default_value(avro_type[0], named)
    if isinstance(avro_type, str):
        if avro_type in named:
            return default_value(named[avro_type], named)
        return {"null": None, "boolean": False, "int": 0, "long": 0, "float": 0.0, "double": 0.0,
                "string": "", "bytes": b""}[avro_type]
    kind = avro_type["type"]
    if kind == "record":
        named[avro_type["name"]] = avro_type
        return {f["name"]: default_value(f["type"], named) for f in avro_type["fields"]}
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if kind == "enum":
        return avro_type["symbols"][0]
    if kind == "fixed":
        return b"\0" * avro_type["size"]
    return default_value(kind, named)


def simulate_objects(n_objects: int, rng: np.random.Generator, mean_epochs: float = 80.0,
                     stars: tuple[np.ndarray, np.ndarray] | None = None, min_epochs: int = 3) -> list[SimulatedObject]:
    """`stars` (ra, dec in degrees): periodic objects are placed on random ones of them, as real
    variable stars are, within 0.3 arcsec."""
    objects = []
    next_source = 10**17 + int(rng.integers(0, 10**12)) * 1000
    for k in range(n_objects):
        kind = KINDS[k % len(KINDS)]
        n = max(min_epochs, int(rng.poisson(mean_epochs)))
        # Detections on random nights, clustered into the observing part of each night.
        nights = np.sort(rng.choice(int(HISTORY_SPAN_D), size=n, replace=True))
        mjd = STREAM_END_MJD - HISTORY_SPAN_D + nights + rng.uniform(0.05, 0.35, n)
        mjd = np.sort(mjd)
        band = rng.choice(len(BANDS), size=n, p=BAND_WEIGHTS).astype(np.int8)
        flux, period = _light_curve(kind, mjd, band, rng)
        err = np.sqrt(NOISE_FLOOR_NJY**2 * rng.uniform(0.7, 1.5, n) ** 2 + (0.02 * flux) ** 2)
        flux = flux + rng.normal(0.0, 1.0, n) * err
        if stars is not None and kind == "periodic" and len(stars[0]):
            star = int(rng.integers(len(stars[0])))
            offset = rng.uniform(0, 0.3 / 3600), rng.uniform(0, 2 * np.pi)
            dec = float(np.clip(stars[1][star] + offset[0] * np.sin(offset[1]), -90, 90))
            ra = float((stars[0][star] + offset[0] * np.cos(offset[1]) / max(np.cos(np.radians(dec)), 1e-6)) % 360)
        else:
            ra = float(rng.uniform(0, 360))
            dec = float(np.degrees(np.arcsin(rng.uniform(-1, 0.3))))  # Rubin's southern sky
        source_id = next_source + np.arange(n, dtype=np.int64)
        next_source += n + 1
        objects.append(SimulatedObject(
            object_id=int(3 * 10**17 + k * 7919 + int(rng.integers(0, 7000))),
            kind=kind, ra=ra, dec=dec, period=period,
            mjd=mjd, band=band, flux=flux.astype(np.float32).astype(np.float64),
            flux_err=err.astype(np.float32).astype(np.float64), source_id=source_id,
        ))
    return objects


def _light_curve(kind: str, mjd: np.ndarray, band: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    n = len(mjd)
    if kind == "constant":
        return np.full(n, rng.normal(0, 300.0)), math.nan
    if kind == "periodic":
        period = float(np.exp(rng.uniform(np.log(0.2), np.log(50.0))))
        amp = rng.uniform(2000, 20000) * (1.0 + 0.15 * (band - 2))  # band-dependent amplitude
        phase = rng.uniform(0, 2 * np.pi)
        return amp * np.sin(2 * np.pi * (mjd - 60000.0) / period + phase), period
    if kind == "transient":
        t0 = rng.uniform(mjd[0], mjd[-1]) if mjd[-1] - mjd[0] < 40 else rng.uniform(mjd[0] + 30, mjd[-1] - 10)
        amp = rng.uniform(1e4, 1e5)
        rise, fall = rng.uniform(2, 8), rng.uniform(15, 60)
        dt = mjd - t0
        shape = np.exp(-dt / fall) / (1.0 + np.exp(-dt / rise))
        return amp * shape * (1.0 - 0.1 * (band - 2)), math.nan
    # noisy: extra scatter and occasional outliers, often negative difference flux
    base = rng.normal(0, 2000.0, n)
    outliers = rng.random(n) < 0.05
    base[outliers] += rng.normal(0, 2e4, outliers.sum())
    return base, math.nan


def alerts_for(obj: SimulatedObject, n_alerts: int, template: dict[str, Any], source_map: dict[str, str],
               window_days: float = 365.0) -> Iterator[dict[str, Any]]:
    """The object's last n_alerts detections as alert records, in time order."""
    first = max(0, len(obj.mjd) - n_alerts)
    for j in range(first, len(obj.mjd)):
        trigger = _dia_source(obj, j, template["diaSource"], source_map)
        earlier = [k for k in range(j) if obj.mjd[j] - obj.mjd[k] < window_days]
        record = dict(template)
        record["diaSource"] = trigger
        record["prvDiaSources"] = [_dia_source(obj, k, template["diaSource"], source_map) for k in earlier]
        record["diaObject"] = _dia_object(obj, template.get("diaObject"))
        if "diaSourceId" in record:
            record["diaSourceId"] = int(obj.source_id[j])
        if "alertId" in record:
            record["alertId"] = int(obj.source_id[j])
        yield record


def _dia_source(obj: SimulatedObject, j: int, template: dict[str, Any], source_map: dict[str, str]) -> dict[str, Any]:
    src = dict(template)
    src[source_map["source_id"]] = int(obj.source_id[j])
    src[source_map["object_id"]] = obj.object_id
    src[source_map["mjd"]] = float(obj.mjd[j])
    src[source_map["band"]] = BANDS[obj.band[j]]
    src[source_map["flux"]] = float(obj.flux[j])
    src[source_map["flux_err"]] = float(obj.flux_err[j])
    src[source_map["ra"]] = obj.ra
    src[source_map["dec"]] = obj.dec
    if "visit" in src:
        src["visit"] = int(obj.mjd[j] * 1000)
    if "snr" in src:
        src["snr"] = float(obj.flux[j] / obj.flux_err[j])
    return src


def _dia_object(obj: SimulatedObject, template: dict[str, Any] | None) -> dict[str, Any] | None:
    if template is None:
        return None
    out = dict(template)
    out.update({k: v for k, v in (("diaObjectId", obj.object_id), ("ra", obj.ra), ("dec", obj.dec)) if k in out})
    if "decl" in out:
        out["decl"] = obj.dec
    return out


def simulate_alerts(n_alerts: int, n_objects: int, schema_id: int, seed: int = 0,
                    stars: tuple[np.ndarray, np.ndarray] | None = None,
                    mean_epochs: float = 80.0) -> Iterator[dict[str, Any]]:
    """n_alerts alert records spread over n_objects, interleaved in time like a live stream.
    With `stars` (ra, dec), the periodic objects sit on those stars (see simulate_objects)."""
    if n_objects < 1 or n_alerts < n_objects:
        raise ValueError("need at least one object and at least one alert per object")
    from .decode.fields import source_field_map

    definition = load_bundled(schema_id)
    types = alert_record_types(definition)
    source_map = source_field_map(types.dia_source)
    named: dict[str, Any] = {}
    template = default_value(definition, named)
    template["diaSource"] = default_value(types.dia_source, named)
    dia_object = next((f for f in definition["fields"] if f["name"] == "diaObject"), None)
    if dia_object is not None:
        t = [x for x in (dia_object["type"] if isinstance(dia_object["type"], list) else [dia_object["type"]])
             if x != "null"][0]
        template["diaObject"] = default_value(t, named)
    rng = np.random.default_rng(seed)
    per_object = np.full(n_objects, n_alerts // n_objects)
    per_object[: n_alerts % n_objects] += 1
    objects = simulate_objects(n_objects, rng, mean_epochs, stars, min_epochs=max(3, int(per_object.max())))
    streams = [list(alerts_for(o, int(k), template, source_map)) for o, k in zip(objects, per_object)]
    # Interleave by the triggering source's time, as a live stream would deliver them.
    mjd_field = source_map["mjd"]
    merged = [a for stream in streams for a in stream]
    merged.sort(key=lambda a: a["diaSource"][mjd_field])
    yield from merged


def write_simulated_file(path: Path, n_alerts: int, n_objects: int, schema_id: int, seed: int = 0,
                         stars: tuple[np.ndarray, np.ndarray] | None = None, mean_epochs: float = 80.0) -> Path:
    """Simulated alerts in an Avro container file (written to a temporary name, then renamed)."""
    import fastavro

    from .schema_store import SchemaStore

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fastavro.writer(fh, SchemaStore().get(schema_id).parsed,
                        simulate_alerts(n_alerts, n_objects, schema_id, seed, stars, mean_epochs))
    tmp.rename(path)
    return path


def simulated_file(data_dir: Path, n_alerts: int, n_objects: int, seed: int = 42,
                   star_catalog: str | None = None) -> Path:
    """Simulated alerts in an Avro container file, cached by their parameters. With
    `star_catalog`, the periodic objects sit on that catalog's stars (so they cross-match)."""
    suffix = f"-on-{star_catalog}" if star_catalog else ""
    path = data_dir / "simulated" / f"alerts-{n_alerts}-{n_objects}-{seed}{suffix}.avro"
    if not path.exists():
        stars = star_positions(data_dir, star_catalog) if star_catalog else None
        write_simulated_file(path, n_alerts, n_objects, latest_bundled_id(), seed, stars)
    return path


def star_positions(data_dir: Path, catalog: str) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of a catalog in <data_dir>/catalogs, importing the default ones if needed."""
    from .xmatch import catalogs_dir, ensure_default_catalogs, load_catalog

    ensure_default_catalogs(data_dir, [catalog])
    c = load_catalog(catalogs_dir(data_dir) / catalog)
    return np.asarray(c.ra), np.asarray(c.dec)
