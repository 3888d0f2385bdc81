"""The `alertfeat` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import Settings, load_settings
from .errors import ConfigError

log = logging.getLogger("alertfeat")


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    return load_settings(getattr(args, "config", None), **{k: v for k, v in overrides.items() if v is not None})


def cmd_run(args: argparse.Namespace) -> int:
    from .app import run_service

    settings = _settings(args)
    logging.getLogger().setLevel(settings.log_level)
    run_service(settings)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import fastavro

    from .schema_store import SchemaStore, latest_bundled_id
    from .simulate import simulate_alerts

    schema_id = args.schema_id or latest_bundled_id()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as fh:
        fastavro.writer(fh, SchemaStore().get(schema_id).parsed,
                        simulate_alerts(args.alerts, args.objects, schema_id, args.seed))
    print(f"wrote {args.alerts} alerts over {args.objects} objects (schema {schema_id}) to {args.out}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .avro_files import alert_files
    from .kafka_io import ensure_topics
    from .replay import replay

    settings = _settings(args)
    topic = args.topic or settings.input_topic
    files = alert_files(args.paths)
    ensure_topics(settings.kafka_common(), {topic: settings.output_partitions})
    with Progress(TextColumn("replay → " + topic), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), transient=False) as progress:
        task = progress.add_task("replay", total=None if args.loop else args.limit, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[task]
            if t.elapsed:
                progress.update(task, rate=f"{t.completed / t.elapsed:,.0f}/s")

        sent = replay(files, settings.kafka_producer(), topic, rate=args.rate, loop=args.loop,
                      schema_id=args.schema_id, limit=args.limit, progress=advance)
    print(f"replayed {sent} alerts from {len(files)} file(s) to {topic}", file=sys.stderr)
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    from .output_json import to_json
    from .subscribe import enriched_alerts

    settings = _settings(args)
    for got in enriched_alerts(settings, args.topic, args.max, args.timeout, args.group):
        if args.json:
            print(to_json(got.view), flush=True)
        else:
            v = got.view
            lat = f"{1000 * got.latency_s:.0f} ms" if got.latency_s is not None else "-"
            print(f"diaSourceId={v.dia_source_id} diaObjectId={v.dia_object_id} mjd={v.mjd:.5f} "
                  f"history={v.history_source} v{v.features_version} latency={lat}", flush=True)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .app import build_pipeline
    from .offline import offline_views
    from .output_json import to_json

    settings = _settings(args)
    failed = 0
    for item in offline_views(build_pipeline(settings, offline=True), args.files, settings.batch_size, args.schema_id):
        if isinstance(item, tuple):
            failed += 1
            print(f"skipped an alert: {item[0]}: {item[1]}", file=sys.stderr)
        elif args.json:
            print(to_json(item))
        else:
            print(f"diaSourceId={item.dia_source_id} diaObjectId={item.dia_object_id} "
                  f"features={len(item.features)} v{item.features_version}")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(_settings(args), args.alerts, args.objects, rate=args.rate)
    return 0 if summary.enriched == summary.sent else 1


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

    command("run", cmd_run, "run the enrichment service (SIGTERM/SIGINT finish the batch, commit and exit)")

    p = command("simulate", cmd_simulate, "write simulated Rubin alerts to an Avro container file", config=False)
    p.add_argument("--alerts", type=int, required=True, help="number of alerts")
    p.add_argument("--objects", type=int, required=True, help="number of DiaObjects they belong to")
    p.add_argument("--out", type=Path, required=True, help="output .avro file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schema-id", type=int, help="alert schema (default: the latest lsst-alert-packet schema)")

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
    p.add_argument("--timeout", type=float, default=10.0, help="stop after S seconds without a new alert")
    p.add_argument("--group", help="consumer group to commit progress under (default: a throwaway group)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("features", cmd_features, "compute features offline over Avro files (no Kafka, no Redis)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--schema-id", type=int, help="wire schema id (default: from the file's writer schema)")

    p = command("demo", cmd_demo, "local broker + Redis + simulated alerts through the service, with a live table")
    p.add_argument("--alerts", type=int, default=2000)
    p.add_argument("--objects", type=int, default=400)
    p.add_argument("--rate", type=float, help="replay rate in alerts/s (default: as fast as possible)")

    bench = sub.add_parser("bench", help="benchmarks (ratios against an anchor measured in the same run)")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    p = bench_sub.add_parser("e2e", help="backlog through the service vs raw broker pass-through")
    p.add_argument("--alerts", dest="opt_n_alerts", type=int, help="alerts in the backlog (default 10000)")
    p.add_argument("--objects", dest="opt_n_objects", type=int, help="objects (default 2000)")
    p.add_argument("--batch-size", dest="opt_batch_size", type=int, help="service batch size (default 1000)")
    for p in bench_sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("numba").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"alertfeat: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open("/dev/null", "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
