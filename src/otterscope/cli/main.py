"""``otterscope`` entry point: sub-commands and their flags."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from otterscope import __version__
from otterscope.config import KEYS, load
from otterscope.errors import ConfigError, OtterscopeError

_SERVE_EPILOG = "Every setting (flags > environment > config file > defaults):\n" + "\n".join(
    f"  {k.dotted:<38} {'(file only) ' if k.file_only else ''}env {k.env if not k.file_only else '-'}\n"
    f"  {'':<38} {k.help} Default: {k.default!r}"
    for k in KEYS
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otterscope",
        description="Self-hosted OpenTelemetry backend: receive OTLP traces, metrics and logs, "
        "keep them durably, and query them.",
    )
    parser.add_argument("--version", action="version", version=f"otterscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the server (OTLP/gRPC, OTLP/HTTP, query API) on the embedded store",
        description="Run otterscope: OTLP/gRPC on --grpc-port, OTLP/HTTP and the API on "
        "--http-port, data kept under --data-dir.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="OTLP/HTTP + API port (default 4318)")
    serve.add_argument("--grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
    serve.add_argument("--data-dir", help="data directory (default ./otterscope-data)")
    serve.add_argument("--config", metavar="FILE", help="YAML config file")
    serve.add_argument("--tls-cert", metavar="PEM", help="TLS certificate (with --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="TLS private key (with --tls-cert)")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        default=None,
        help="allow binding a non-loopback host without any token",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default warning)",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    from otterscope.server import Server

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    flags = {
        "server.host": args.host,
        "server.http_port": args.http_port,
        "server.grpc_port": args.grpc_port,
        "server.data_dir": args.data_dir,
        "server.tls_cert": args.tls_cert,
        "server.tls_key": args.tls_key,
        "server.allow_anonymous": args.allow_anonymous,
    }
    settings = load(flags, args.config)
    return asyncio.run(Server(settings).run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "serve":
            return _serve(args)
    except ConfigError as exc:
        # One line, whatever the message holds (YAML parse errors span several).
        print(f"otterscope: configuration error: {' '.join(exc.message.split())}", file=sys.stderr)
        return 2
    except OtterscopeError as exc:
        print(f"otterscope: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
