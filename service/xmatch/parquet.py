"""Importers for any Parquet dataset and for HATS catalogs (LINCC's HEALPix-partitioned Parquet).

The user names the id/ra/dec columns (HATS gives ra/dec in its properties) and the columns to
carry. Input is read in record batches; up to `memory_rows` rows are sorted in memory, and a
larger input goes through an external bucket sort by coarse HEALPix pixel, so memory holds one
bucket at a time (a HATS partition is already spatially compact, so its batches touch few
buckets). Needs pyarrow (`pip install 'alertfeat[catalogs]'`).
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CatalogError
from .healpix import MAX_ORDER, ang2pix_nest_array
from .store import CatalogWriter, check_name, prepare_columns

MEMORY_ROWS = 20_000_000
BATCH_ROWS = 1 << 20
_PART = re.compile(r"^Npix=(\d+)(.*)$")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise CatalogError("Parquet and HATS import need pyarrow: pip install 'alertfeat[catalogs]'") from None
    return pa, pc, pq


@dataclass
class ColumnChoice:
    """Which source columns become the catalog's id, position, magnitude, proper motion and extras."""

    id: str
    ra: str = "ra"
    dec: str = "dec"
    mag: str | None = None
    pmra: str | None = None
    pmdec: str | None = None
    carry: Sequence[str] = field(default_factory=tuple)

    def source_columns(self) -> list[str]:
        cols = [self.id, self.ra, self.dec, self.mag, self.pmra, self.pmdec, *self.carry]
        return list(dict.fromkeys(c for c in cols if c))


def _to_numpy(batch, choice: ColumnChoice) -> dict[str, np.ndarray]:
    pa, pc, _ = _pyarrow()

    def floats(name: str, dtype) -> np.ndarray:
        col = batch.column(name)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type)):
            raise CatalogError(f"column {name!r} is {col.type}, expected a number")
        return pc.fill_null(pc.cast(col, pa.float64()), float("nan")).to_numpy(zero_copy_only=False).astype(dtype)

    ids = batch.column(choice.id)
    if not pa.types.is_integer(ids.type):
        raise CatalogError(f"id column {choice.id!r} is {ids.type}; the xmatch record carries a long sourceId")
    if ids.null_count:
        raise CatalogError(f"id column {choice.id!r} has {ids.null_count} null values")
    try:
        id_values = pc.cast(ids, pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:
        raise CatalogError(f"id column {choice.id!r} does not fit in int64: {exc}") from None
    out = {"id": id_values, "ra": floats(choice.ra, np.float64), "dec": floats(choice.dec, np.float64)}
    if choice.mag:
        out["mag"] = floats(choice.mag, np.float32)
    if choice.pmra:
        out["pmra"] = floats(choice.pmra, np.float32)
        out["pmdec"] = floats(choice.pmdec, np.float32)
    for name in choice.carry:
        col = batch.column(name)
        if pa.types.is_floating(col.type):
            out[name] = floats(name, np.float64 if col.type.bit_width == 64 else np.float32)
        elif pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
            if col.null_count:
                raise CatalogError(f"carried column {name!r} ({col.type}) has nulls; only float columns may")
            out[name] = col.to_numpy(zero_copy_only=False)
        else:
            raise CatalogError(f"carried column {name!r} is {col.type}; only numbers and booleans can be carried")
    return out


def _check_columns(schema_names: Sequence[str], choice: ColumnChoice, source: Path) -> None:
    if (choice.pmra is None) != (choice.pmdec is None):
        raise CatalogError("give both --pmra and --pmdec, or neither")
    missing = [c for c in choice.source_columns() if c not in schema_names]
    if missing:
        raise CatalogError(f"{source}: no column(s) {', '.join(missing)}; it has {', '.join(schema_names)}")


class _Sorter:
    """Collects chunks and hands them back in nested-pixel order: in memory, or bucketed on disk."""

    def __init__(self, total_rows: int, memory_rows: int, workdir: Path):
        self.in_memory = total_rows <= memory_rows
        # Enough buckets that an average one holds a quarter of memory_rows.
        self.order = min(8, math.ceil(math.log(max(1.0, 4 * total_rows / memory_rows / 12), 4)))
        self.chunks: list[dict[str, np.ndarray]] = []
        self.workdir = workdir
        self.dtypes: dict[str, np.dtype] = {}
        self.rows = 0
        self.dropped = 0

    def add(self, cols: dict[str, np.ndarray]) -> None:
        good = np.isfinite(cols["ra"]) & np.isfinite(cols["dec"]) & (np.abs(cols["dec"]) <= 90.0)
        self.dropped += int(len(good) - good.sum())
        if not good.all():
            cols = {k: v[good] for k, v in cols.items()}
        if not self.dtypes:
            self.dtypes = {k: v.dtype for k, v in cols.items()}
        cols = {k: np.ascontiguousarray(v, self.dtypes[k]) for k, v in cols.items()}
        self.rows += len(cols["id"])
        if self.in_memory:
            self.chunks.append(cols)
            return
        bucket = ang2pix_nest_array(self.order, cols["ra"], cols["dec"])
        order = np.argsort(bucket, kind="stable")
        bucket = bucket[order]
        edges = np.flatnonzero(np.diff(bucket)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(bucket)]):
            where = self.workdir / f"b{int(bucket[lo]):06d}"
            where.mkdir(exist_ok=True)
            for k, v in cols.items():
                with open(where / f"{k}.bin", "ab") as fh:
                    v[order[lo:hi]].tofile(fh)

    def sorted_chunks(self) -> Iterator[dict[str, np.ndarray]]:
        if self.in_memory:
            if self.chunks:
                cols = {k: np.concatenate([c[k] for c in self.chunks]) for k in self.dtypes}
                self.chunks.clear()
                yield _prepare(cols)
            return
        for where in sorted(self.workdir.glob("b*")):
            cols = {k: np.fromfile(where / f"{k}.bin", dtype) for k, dtype in self.dtypes.items()}
            yield _prepare(cols)
            shutil.rmtree(where)


def _workdir(root: str | Path) -> tempfile.TemporaryDirectory:
    """Scratch space for the bucket sort, on the catalog's file system."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=root, prefix=".import-")


def _prepare(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    core = ("id", "ra", "dec", "mag", "pmra", "pmdec")
    return prepare_columns(cols["ra"], cols["dec"], ids=cols["id"], mag=cols.get("mag"), pmra=cols.get("pmra"),
                           pmdec=cols.get("pmdec"), extra={k: v for k, v in cols.items() if k not in core})


def _write(root: Path, name: str, sorter: _Sorter, choice: ColumnChoice, *, epoch: float | None, mag_band: str | None,
           source: dict[str, Any], checks: dict[str, Any]) -> Path:
    if choice.pmra and epoch is None:
        raise CatalogError("proper motions need the epoch of the positions (--epoch, Julian year)")
    notes = []
    if sorter.dropped:
        notes.append(f"{sorter.dropped} rows without a valid ra/dec were dropped")
    extra = {k: v for k, v in sorter.dtypes.items() if k not in ("id", "ra", "dec", "mag", "pmra", "pmdec")}
    writer = CatalogWriter(root, name, sorter.rows, has_pm=bool(choice.pmra), extra=extra)
    try:
        for chunk in sorter.sorted_chunks():
            writer.append(chunk)
    except BaseException:
        writer.abort()
        raise
    docs = {key: f"source column {getattr(choice, key)}" for key in ("id", "ra", "dec")}
    if choice.mag:
        docs["mag"] = f"source column {choice.mag}"
    return writer.finish(epoch=2000.0 if epoch is None else epoch, source=source, mag_band=mag_band or choice.mag or "",
                         notes=notes, checks=checks, docs=docs)


# --------------------------------------------------------------------------- plain Parquet


def parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if files:
            return files
    raise CatalogError(f"{path}: no Parquet file there")


def import_parquet(root: str | Path, source: str | Path, name: str, choice: ColumnChoice, *,
                   epoch: float | None = None, mag_band: str | None = None, memory_rows: int = MEMORY_ROWS) -> Path:
    """Import a Parquet file, or every *.parquet under a directory."""
    _, _, pq = _pyarrow()
    check_name(name)
    source = Path(source)
    files = parquet_files(source)
    try:
        metas = [pq.ParquetFile(f) for f in files]
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise CatalogError(f"{source}: not readable as Parquet ({exc})") from None
    for f, meta in zip(files, metas):
        _check_columns(meta.schema_arrow.names, choice, f)
    total = sum(m.metadata.num_rows for m in metas)
    with _workdir(root) as tmp:
        sorter = _Sorter(total, memory_rows, Path(tmp))
        for meta in metas:
            for batch in meta.iter_batches(batch_size=BATCH_ROWS, columns=choice.source_columns()):
                sorter.add(_to_numpy(batch, choice))
        return _write(Path(root), name, sorter, choice, epoch=epoch, mag_band=mag_band,
                      source={"format": "parquet", "path": str(source.resolve()), "files": len(files)}, checks={})


# --------------------------------------------------------------------------- HATS


def read_properties(file: Path) -> dict[str, str]:
    """A Java-style properties file (key=value lines, # or ! comments)."""
    props = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if sep:
            props[key.strip()] = value.strip()
    return props


def hats_catalog(path: Path) -> tuple[Path, dict[str, str]]:
    """The catalog directory and its properties; a collection resolves to its primary catalog."""
    if (path / "collection.properties").is_file():
        primary = read_properties(path / "collection.properties").get("hats_primary_table_url")
        if not primary:
            raise CatalogError(f"{path}: collection.properties has no hats_primary_table_url")
        path = path / primary
    for fname in ("hats.properties", "properties"):
        if (path / fname).is_file():
            return path, read_properties(path / fname)
    raise CatalogError(f"{path}: not a HATS catalog (no hats.properties or properties file)")


def hats_partitions(catalog: Path, suffix: str = ".parquet") -> list[tuple[int, int, list[Path]]]:
    """(order, pixel, files) of every leaf partition, in nested order (HATS dataset layout)."""
    base = catalog / "dataset" if (catalog / "dataset").is_dir() else catalog
    parts = []
    for norder in sorted(base.glob("Norder=*")):
        order = int(norder.name.split("=", 1)[1])
        for ddir in sorted(norder.glob("Dir=*")):
            for leaf in sorted(ddir.iterdir()):
                m = _PART.match(leaf.name)
                if not m:
                    continue
                pix = int(m.group(1))
                if int(ddir.name.split("=", 1)[1]) != pix // 10_000 * 10_000:
                    raise CatalogError(f"{leaf}: Npix={pix} is not under Dir={pix // 10_000 * 10_000}")
                if leaf.is_dir():
                    files = sorted(p for p in leaf.iterdir() if p.is_file() and p.name.endswith(".parquet"))
                elif suffix != "/" and leaf.name.endswith(suffix):
                    files = [leaf]
                else:
                    continue
                parts.append((order, pix, files))
    parts.sort(key=lambda p: p[1] << (2 * (MAX_ORDER - p[0])))
    return parts


def import_hats(root: str | Path, source: str | Path, name: str, choice: ColumnChoice, *,
                epoch: float | None = None, mag_band: str | None = None, memory_rows: int = MEMORY_ROWS) -> Path:
    """Import a HATS catalog (or collection), one partition at a time."""
    _, _, pq = _pyarrow()
    check_name(name)
    catalog, props = hats_catalog(Path(source))
    kind = props.get("dataproduct_type", "object")
    if kind not in ("object", "source"):
        raise CatalogError(f"{catalog}: a HATS {kind} catalog has no sources to match; give the object catalog")
    choice.ra = props.get("hats_col_ra", choice.ra) if choice.ra == "ra" else choice.ra
    choice.dec = props.get("hats_col_dec", choice.dec) if choice.dec == "dec" else choice.dec
    parts = hats_partitions(catalog, props.get("hats_npix_suffix", ".parquet"))
    if not parts:
        raise CatalogError(f"{catalog}: no Norder=/Dir=/Npix= partitions")
    listed = _partition_info(catalog)
    if listed is not None and listed != {(o, p) for o, p, _ in parts}:
        raise CatalogError(f"{catalog}: partition_info.csv lists {len(listed)} partitions, "
                           f"the dataset has {len(parts)}")
    try:
        metas = [(o, p, [pq.ParquetFile(f) for f in files]) for o, p, files in parts]
    except Exception as exc:
        raise CatalogError(f"{catalog}: a partition is not readable as Parquet ({exc})") from None
    first = next(m for _, _, ms in metas for m in ms)
    _check_columns(first.schema_arrow.names, choice, catalog)
    total = sum(m.metadata.num_rows for _, _, ms in metas for m in ms)
    if "hats_nrows" in props and props["hats_nrows"].isdigit() and int(props["hats_nrows"]) != total:
        raise CatalogError(f"{catalog}: properties say {props['hats_nrows']} rows, the partitions hold {total}")
    outside = 0
    with _workdir(root) as tmp:
        sorter = _Sorter(total, memory_rows, Path(tmp))
        for order, pix, ms in metas:
            for meta in ms:
                for batch in meta.iter_batches(batch_size=BATCH_ROWS, columns=choice.source_columns()):
                    cols = _to_numpy(batch, choice)
                    ok = np.isfinite(cols["ra"]) & np.isfinite(cols["dec"])
                    outside += int(np.sum(ang2pix_nest_array(order, cols["ra"][ok], cols["dec"][ok]) != pix))
                    sorter.add(cols)
        checks = {"partitions": len(parts), "rows_outside_their_partition": outside}
        source_meta = {"format": "hats", "path": str(catalog.resolve()),
                       "catalog_name": props.get("obs_collection"), "hats_version": props.get("hats_version")}
        return _write(Path(root), name, sorter, choice, epoch=epoch, mag_band=mag_band, source=source_meta,
                      checks=checks)


def _partition_info(catalog: Path) -> set[tuple[int, int]] | None:
    file = catalog / "partition_info.csv"
    if not file.is_file():
        return None
    lines = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split(",")]
    try:
        io, ip = header.index("Norder"), header.index("Npix")
        return {(int(v[io]), int(v[ip])) for v in (line.split(",") for line in lines[1:])}
    except (ValueError, IndexError):
        raise CatalogError(f"{file}: expected Norder and Npix columns") from None
