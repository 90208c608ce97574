"""``fless-node``: the daemon's command line.

Flags override ``FLESS_*`` variables, which override the config file, which
overrides the embedded defaults (see ``conf/fless.toml``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from fless import __version__
from fless._openssl import defer_openssl
from fless.config import ROLES, ConfigError, Settings, load_settings, settings_as_dict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fless-node",
        description="Run a fless node: core, worker, or both (role 'all', the default).",
    )
    parser.add_argument("--version", action="version", version=f"fless-node {__version__}")
    parser.add_argument("--config", metavar="FILE", help="a TOML settings file (or FLESS_CONFIG)")
    parser.add_argument("--role", choices=ROLES, help="what this node runs (default: all)")
    parser.add_argument(
        "--lan",
        action=argparse.BooleanOptionalAction,
        help="serve the LAN: API, RPC and gossip on every interface, and the beacon that "
        "finds the other nodes; --no-lan keeps to loopback (default: on for roles core "
        "and worker, off for all)",
    )
    parser.add_argument(
        "--host", help="address the REST API listens on (default: by --lan, 127.0.0.1 or 0.0.0.0)"
    )
    parser.add_argument("--port", type=int, help="port of the REST API (default: 4000)")
    parser.add_argument(
        "--workers",
        type=int,
        help="API processes (default 0: one per CPU with role all, one with role core)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the node keeps its data")
    parser.add_argument(
        "--rpc-host", help="address the ZeroMQ RPC socket binds (default: by --lan, as --host)"
    )
    parser.add_argument("--rpc-port", type=int, help="port of the ZeroMQ RPC socket (7470)")
    parser.add_argument(
        "--advertise-host",
        help="the address other nodes reach this one at (default: the LAN interface's, "
        "or 127.0.0.1 on loopback)",
    )
    parser.add_argument("--gossip-port", type=int, help="UDP port of the gossip (7471)")
    parser.add_argument(
        "--seeds", metavar="HOST:PORT,...", help="gossip addresses of nodes to join at start"
    )
    parser.add_argument("--key-dir", metavar="DIR", help="the cluster's keys (data dir/keys)")
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="default: info"
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "show-config", "reset-admin-key", "keygen"),
        help="run the node (default), print the effective settings, "
        "replace the admin key, or create the cluster's keys in the key directory",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings with the command line applied last."""
    return load_settings(
        args.config,
        overrides={
            "role": args.role,
            "lan": None if args.lan is None else ("on" if args.lan else "off"),
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "api": {"host": args.host, "port": args.port, "workers": args.workers},
            "cluster": {
                "rpc_host": args.rpc_host,
                "rpc_port": args.rpc_port,
                "advertise_host": args.advertise_host,
                "gossip_port": args.gossip_port,
                "seeds": args.seeds,
                "key_dir": args.key_dir,
            },
        },
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fless-node``."""
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"fless-node: {exc}", file=sys.stderr)
        return 2
    if args.command == "show-config":
        print(json.dumps(settings_as_dict(settings), indent=2))
        return 0
    if args.command == "run":
        # A reload (SIGHUP) before the node has its own handler (gunicorn's
        # arbiter, the worker's loop) would end it; the keys are not read yet.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if settings.role == "worker":
            # Before anything imports hashlib, hmac or asyncio: a worker loads
            # OpenSSL only when a function makes an HTTPS call.
            defer_openssl()
    from fless import node

    if args.command == "keygen":
        if node.has_keys(settings.key_path):
            print(
                f"fless-node: {settings.key_path} already holds keys; not replacing them",
                file=sys.stderr,
            )
            return 1
        node.keygen(settings.key_path)
        print(
            f"fless-node: cluster keys written to {settings.key_path}; "
            "copy this directory to every node",
            file=sys.stderr,
        )
        return 0
    if args.command == "reset-admin-key":
        path = node.reset_admin_key(settings)
        print(f"fless-node: new admin key written to {path}", file=sys.stderr)
        return 0
    return node.serve(settings)


if __name__ == "__main__":
    sys.exit(main())
