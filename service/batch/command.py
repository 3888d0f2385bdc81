"""`alertfeat batch INPUT OUTPUT`: argument definitions (light) and the command (imports lsdb lazily)."""

from __future__ import annotations

import argparse
import math
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="HATS catalog: objects with nested sources, or objects (with --sources)")
    p.add_argument("output", metavar="OUTPUT", help="HATS catalog to write: one row per object, one column per feature")
    p.add_argument("--sources", metavar="HATS", help="flat source catalog joined to INPUT's objects by diaObjectId")
    p.add_argument("--sources-margin", metavar="HATS", help="margin cache of --sources (sources across pixel borders)")
    p.add_argument("--nested", default="diaSource", help="nested source column of INPUT (default: diaSource)")
    p.add_argument("--columns", metavar="NAME=COLUMN,...",
                   help="input names for Rubin's, e.g. psfFlux=scienceFlux,psfFluxErr=scienceFluxErr")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--all-time", action="store_true", help="every source, not the stream's 365-day window")
    when.add_argument("--window-days", type=float, default=365.0, help="window before each object's newest source")
    p.add_argument("--as-of", type=float, metavar="MJD",
                   help="only sources up to this MJD (TAI): what the stream had published at that time")
    p.add_argument("--chunk", type=int, default=20_000, help="objects per kernel call (bounds worker memory)")
    p.add_argument("--workers", type=int, default=1, help="local Dask worker processes (one per core)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this Dask scheduler instead of a local cluster")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_batch(args: argparse.Namespace) -> int:
    from .columns import BatchInputError, ColumnMap
    from .lightcurves import Window

    try:
        columns = ColumnMap.parse(args.columns, args.nested)
        if args.workers < 1:
            raise BatchInputError(f"--workers must be at least 1, got {args.workers}")
        if not args.all_time and not args.window_days > 0:
            raise BatchInputError(f"--window-days must be positive, got {args.window_days}")
        window = Window(days=math.inf if args.all_time else args.window_days, as_of=args.as_of)
        options = dict(sources=args.sources, sources_margin=args.sources_margin, columns=columns, window=window,
                       chunk_objects=args.chunk, workers=args.workers, scheduler=args.scheduler,
                       progress=not args.no_progress)
        try:
            from .run import batch_features
        except ImportError as exc:
            raise BatchInputError(f"needs the batch extra: pip install 'alertfeat[batch]' ({exc})") from None

        summary = batch_features(args.input, args.output, overwrite=args.overwrite, **options)
    except BatchInputError as exc:
        print(f"alertfeat batch: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0
