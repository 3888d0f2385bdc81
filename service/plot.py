"""`alertfeat plot`: one object's light curve, periodogram and folded curve, as one PNG.

The points come from alerts (a file, or the enriched topic): every diaSource and prvDiaSource
of the object, each once; or from the object's history in Redis (what the service merges). The periodogram is our own kernel's (features.gls.exact_powers on the
published grid), and the marked peaks, period and FAP are the published features computed by
features.compute_features, so the picture shows what the service computes.
Needs the optional extra `plot` (matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .columns import BAND_CODE, BANDS, Sources
from .decode.fields import source_field_map
from .decode.schema_walk import alert_record_types
from .errors import PlotError

BAND_COLOURS = dict(zip(BANDS, ("#56b4e9", "#009e73", "#e69f00", "#d55e00", "#cc79a7", "#000000")))
PANELS = ("light curve", "periodogram", "folded")


@dataclass
class ObjectCurve:
    object_id: int
    source_id: np.ndarray
    mjd: np.ndarray
    band: np.ndarray  # int8 codes into BANDS
    flux: np.ndarray  # difference flux, nJy
    flux_err: np.ndarray

    def as_sources(self) -> Sources:
        """The curve as one alert's history, for the feature kernels."""
        return Sources(np.array([0, len(self.mjd)], np.int64), self.source_id, self.mjd, self.band, self.flux,
                       self.flux_err, np.zeros(len(self.mjd), np.int64))


def curve_from_alerts(alerts: Iterable[tuple[dict[str, Any], dict[str, Any]]], object_id: int | None) -> ObjectCurve:
    """Every source of `object_id` (default: the object of the first alert) in (record, writer
    schema) pairs, each source once."""
    rows: dict[int, tuple[float, int, float, float]] = {}
    for record, schema in alerts:
        fields = source_field_map(alert_record_types(schema).dia_source)
        src = record["diaSource"]
        oid = src.get(fields.get("object_id", ""))
        if object_id is None:
            object_id = oid
        if oid != object_id:
            continue
        for s in [src, *(record.get("prvDiaSources") or [])]:
            flux, err = s[fields["flux"]], s[fields["flux_err"]]
            if flux is None or err is None or not err > 0:
                continue
            rows[s[fields["source_id"]]] = (s[fields["mjd"]], BAND_CODE.get(s[fields["band"]], -1), flux, err)
    if not rows:
        raise PlotError(f"no sources of object {object_id} found" if object_id is not None else "no alerts found")
    ids = np.array(sorted(rows, key=lambda k: rows[k][0]), np.int64)
    mjd, band, flux, err = (np.array([rows[k][i] for k in ids]) for i in range(4))
    return ObjectCurve(int(object_id), ids, mjd.astype(np.float64), band.astype(np.int8), flux.astype(np.float64),
                       err.astype(np.float64))


def curve_from_redis(redis_url: str, prefix: str, object_id: int) -> ObjectCurve:
    """The object's stored history (the usable sources of its past alerts), each source once."""
    import redis

    from .history import RECORD, history_key
    from .redaction import mask_url

    raw = redis.Redis.from_url(redis_url, socket_timeout=5).get(history_key(prefix, object_id))
    if not raw or len(raw) % RECORD.itemsize:
        raise PlotError(f"no history of object {object_id} in Redis at {mask_url(redis_url)} (prefix {prefix!r})")
    rec = np.frombuffer(raw, RECORD)
    _, first = np.unique(rec["source_id"], return_index=True)  # two workers may have appended a record twice
    rec = rec[first[np.argsort(rec["mjd"][first], kind="stable")]]
    return ObjectCurve(object_id, rec["source_id"].astype(np.int64), rec["mjd"].astype(np.float64),
                       rec["band"].astype(np.int8), rec["flux"].astype(np.float64), rec["flux_err"].astype(np.float64))


def alerts_in_files(paths: Iterable[Path]) -> Iterable[tuple[dict, dict]]:
    import fastavro

    for path in paths:
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            for record in reader:
                yield record, reader.writer_schema


@dataclass
class Periodogram:
    frequency: np.ndarray  # cycles/day, the published grid
    power: np.ndarray
    period: float  # the published features: best and second peak, and the best peak's FAP
    power_at_period: float
    period2: float
    power2: float
    fap: float


def periodogram(curve: ObjectCurve) -> Periodogram | None:
    """The multiband power on the published grid and the published peak features; None when the
    kernels compute no period for this curve (too few points)."""
    from .features import compute_features, feature_spec
    from .features.gls import exact_powers

    spec = feature_spec()
    row = compute_features(curve.as_sources())[0]
    value = {name: float(row[spec.index(name)]) for name in
             ("multiPeriod", "multiPower", "multiPeriod2", "multiPower2", "multiFap")}
    if not math.isfinite(value["multiPeriod"]):
        return None
    grid = spec.grid
    # The kernel's inputs (features.gls): bands with enough points, times centred, weights and
    # band-mean-subtracted fluxes. A band of 3 points is fitted exactly at every frequency: its
    # chi2_0 is the constant `share`.
    t, w, wy, seg, weight, chi2_0, share = [], [], [], [0], [], [], 0.0
    centre = 0.5 * (curve.mjd.min() + curve.mjd.max())
    for code in range(len(BANDS)):
        sel = curve.band == code
        if sel.sum() < grid.min_points_per_band:
            continue
        wk = 1.0 / curve.flux_err[sel] ** 2
        dy = curve.flux[sel] - np.sum(wk * curve.flux[sel]) / wk.sum()
        if sel.sum() == 3:
            share += float(np.sum(wk * dy * dy))
            continue
        t.append(curve.mjd[sel] - centre)
        w.append(wk)
        wy.append(wk * dy)
        seg.append(seg[-1] + int(sel.sum()))
        weight.append(wk.sum())
        chi2_0.append(float(np.sum(wk * dy * dy)))
    t, w, wy = (np.concatenate(a) for a in (t, w, wy))
    # The kernel's scaling: sum w = 1 and share + sum chi2_0 = 1.
    w_total, chi2_total = w.sum(), share + sum(chi2_0)
    y_scale = math.sqrt(chi2_total / w_total)
    w, wy = w / w_total, wy / (w_total * y_scale)
    weight, chi2_0, share = np.array(weight) / w_total, np.array(chi2_0) / chi2_total, share / chi2_total
    omega0, domega = 2 * math.pi * grid.min_frequency, 2 * math.pi * grid.step
    power = np.empty(grid.n_freq)
    exact_powers(np.cos(omega0 * t), np.sin(omega0 * t), np.cos(domega * t), np.sin(domega * t), w, wy,
                 np.array(seg, np.int64), weight, chi2_0, share, grid.n_freq, power)
    return Periodogram(grid.frequencies(), power, value["multiPeriod"], value["multiPower"], value["multiPeriod2"],
                       value["multiPower2"], value["multiFap"])


# Panels drawn after the three above, each (axes, curve, features) -> None. When the fitted
# transient model families exist (e.g. a Bazin fit), append a function here that draws the
# fitted model over the points; the figure grows by one panel per entry.
MODEL_PANELS: list[tuple[str, Callable[[Any, ObjectCurve, Periodogram | None], None]]] = []


def plot_object(curve: ObjectCurve, out: Path) -> list[str]:
    """Write the PNG; returns the titles of its panels, in order."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("matplotlib is not installed: pip install 'alertfeat[plot]'") from None
    pg = periodogram(curve)
    n_panels = len(PANELS) + len(MODEL_PANELS)
    fig, axes = plt.subplots(n_panels, 1, figsize=(8, 3.2 * n_panels), constrained_layout=True)
    fig.suptitle(f"diaObjectId {curve.object_id}: {len(curve.mjd)} points")
    lc, pax, fold = axes[:3]
    for code, band in enumerate(BANDS):
        sel = curve.band == code
        if sel.any():
            lc.errorbar(curve.mjd[sel], curve.flux[sel], curve.flux_err[sel], fmt="o", ms=3, lw=0.8,
                        color=BAND_COLOURS[band], label=f"{band} ({sel.sum()})")
    lc.set(title="light curve", xlabel="MJD (TAI)", ylabel="difference flux (nJy)")
    lc.legend(fontsize=8, ncol=6)
    if pg is None:
        for ax, title in ((pax, "periodogram"), (fold, "folded")):
            ax.set_title(title)
            ax.text(0.5, 0.5, "too few points for a period", ha="center", va="center", transform=ax.transAxes)
    else:
        pax.plot(pg.frequency, pg.power, lw=0.6, color="0.3")
        pax.axvline(1 / pg.period, color="C3", ls="--", lw=1, label=f"best: P = {pg.period:.5g} d")
        if math.isfinite(pg.period2):
            pax.axvline(1 / pg.period2, color="C0", ls=":", lw=1, label=f"second: P = {pg.period2:.5g} d")
        pax.set_xscale("log")
        pax.set(title="periodogram", xlabel="frequency (1/d)", ylabel="power", ylim=(0, 1.05))
        fap = f"{pg.fap:.2g}" if pg.fap > 0 else "< 1e-300"  # below float64's range
        pax.text(0.01, 0.95, f"FAP (best) = {fap}", transform=pax.transAxes, va="top")
        pax.legend(fontsize=8, loc="upper right")
        phase = np.mod(curve.mjd - curve.mjd.min(), pg.period) / pg.period
        for code, band in enumerate(BANDS):
            sel = curve.band == code
            if sel.any():
                for shift in (0, 1):  # two cycles, so a minimum at phase 0 is seen whole
                    fold.errorbar(phase[sel] + shift, curve.flux[sel], curve.flux_err[sel], fmt="o", ms=3, lw=0.8,
                                  color=BAND_COLOURS[band], alpha=1.0 if shift == 0 else 0.4)
        fold.set(title="folded", xlabel=f"phase at P = {pg.period:.5g} d", ylabel="difference flux (nJy)")
    titles = list(PANELS)
    for ax, (title, draw) in zip(axes[3:], MODEL_PANELS):
        draw(ax, curve, pg)
        ax.set_title(title)
        titles.append(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return titles
