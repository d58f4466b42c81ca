"""The ``pushgate`` command line: serve, worker, demo, tenant and key management, check."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from redis.exceptions import RedisError

from approvals.store.backend import Backend, open_backend
from approvals.store.tenants import TenantStore
from pushgate.logs import configure_logging
from pushgate.preflight import problems
from pushgate.settings import Settings, SettingsError, load_settings

#: a subcommand: what ``main`` runs for it (``set_defaults(func=...)``); the exit status
Command = Callable[[argparse.Namespace], int]


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when available."""
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _preflight(settings: Settings) -> None:
    """Refuse to go on when serve or worker could not run, naming every bad variable."""
    found = problems(settings)
    if found:
        raise SettingsError("cannot start:\n  " + "\n  ".join(found))


#: what a store command does with the open backend; its result is printed as JSON
StoreAction = Callable[[Backend, Settings, argparse.Namespace], Awaitable[dict[str, Any]]]


async def _tenant_create(
    backend: Backend, _settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    tenants = TenantStore(backend)
    tenant_id, key_id, api_key = await tenants.create_tenant(args.name, _now_ms())
    namesakes = [t for t in await tenants.tenants_named(args.name) if t != tenant_id]
    if namesakes:
        sys.stderr.write(
            f"pushgate: note: {len(namesakes)} other tenant(s) are also named "
            f"{args.name.strip()!r} ({', '.join(namesakes)}); a name is only a label, "
            f"keys and data belong to the tenant id, so {tenant_id} is a separate, "
            "empty tenant\n"
        )
    return {"tenant_id": tenant_id, "admin_key": api_key, "key_id": key_id}


async def _apikey_create(
    backend: Backend, _settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    key_id, api_key = await TenantStore(backend).create_key(args.tenant_id, args.role, _now_ms())
    return {"key_id": key_id, "api_key": api_key, "role": args.role}


async def _apikey_revoke(
    backend: Backend, _settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    if not await TenantStore(backend).revoke_key(args.key_id):
        raise LookupError(f"unknown key {args.key_id}")
    return {"key_id": args.key_id, "revoked": True}


async def _check(backend: Backend, settings: Settings, _args: argparse.Namespace) -> dict[str, Any]:
    info = await backend.redis.info("server")
    return {
        "ok": True,
        "redis": {"version": info.get("redis_version") or info.get("valkey_version")},
        "public_url": settings.public_url,
        "shards": settings.shards,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _with_backend(
    settings: Settings, action: StoreAction, args: argparse.Namespace
) -> dict[str, Any]:
    backend = open_backend(settings)
    try:
        return await action(backend, settings, args)
    finally:
        await backend.close()


def _store_command(action: StoreAction, *, preflight: bool = False) -> Command:
    """A command that runs ``action`` against Redis and prints its result as one JSON line."""

    def command(args: argparse.Namespace) -> int:
        settings = _settings()
        configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
        if preflight:
            _preflight(settings)
        _print(_run(_with_backend(settings, action, args)))
        return 0

    return command


def _serve(args: argparse.Namespace) -> int:
    """``pushgate serve``: the gateway (and a worker with ``--with-worker``) until SIGTERM."""
    settings = _settings(host=args.host, port=args.port)
    _preflight(settings)
    configure_logging(settings.log_level, settings.log_format)
    from pushgate.runtime import serve, stop_on_signals

    async def serving() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await serve(settings, with_worker=args.with_worker, stop=stop)

    _run(serving())
    return 0


def _worker(_args: argparse.Namespace) -> int:
    """``pushgate worker``: a push worker until SIGTERM."""
    settings = _settings()
    _preflight(settings)
    configure_logging(settings.log_level, settings.log_format)
    from pushgate.runtime import run_worker, stop_on_signals

    async def working() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop=stop)

    _run(working())
    return 0


def _demo(args: argparse.Namespace) -> int:
    """``pushgate demo``: everything on one machine."""
    from pushgate.demo.runner import run_demo

    configure_logging("warning", "console", stream=sys.stderr)
    _run(run_demo(host=args.host, port=args.port))
    return 0


def _radius(_args: argparse.Namespace) -> int:
    """``pushgate radius``: settings from PUSHGATE_RADIUS_*, no Redis (a client of the API)."""
    from integrations.radius.service import serve_until_signalled
    from integrations.radius.settings import load_radius_settings

    settings = load_radius_settings()
    configure_logging(settings.log_level, settings.log_format)
    _run(serve_until_signalled(settings))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pushgate", description="Push-notification login approval with TOTP fallback."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP + websocket gateway")
    serve.add_argument("--host", help="listen address (overrides PUSHGATE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (overrides PUSHGATE_PORT)")
    serve.add_argument("--with-worker", action="store_true", help="also run a push worker")
    serve.set_defaults(func=_serve)
    sub.add_parser("worker", help="run a push worker").set_defaults(func=_worker)
    demo = sub.add_parser("demo", help="everything on one machine with an embedded Redis")
    demo.add_argument("--host", help="listen address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="listen port (default 8080)")
    demo.set_defaults(func=_demo)
    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    tenant_create = tenant.add_parser(
        "create",
        help="create a tenant and its first admin key (every call makes a new tenant, "
        "even with a name already in use)",
    )
    tenant_create.add_argument("name", help="a label for the tenant, 1-200 characters")
    tenant_create.set_defaults(func=_store_command(_tenant_create))
    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = apikey.add_parser("create", help="create an API key (shown once)")
    key_create.add_argument("tenant_id")
    key_create.add_argument("--role", choices=["portal", "admin"], required=True)
    key_create.set_defaults(func=_store_command(_apikey_create))
    key_revoke = apikey.add_parser("revoke", help="revoke an API key by its id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=_store_command(_apikey_revoke))
    check = sub.add_parser(
        "check", help="check everything serve and worker need (settings, files, Redis)"
    )
    check.set_defaults(func=_store_command(_check, preflight=True))
    radius = sub.add_parser("radius", help="run the RADIUS server for VPN and Wi-Fi logins")
    radius.set_defaults(func=_radius)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pushgate`` script."""
    args = _parser().parse_args(argv)
    command: Command = args.func
    try:
        return command(args)
    except SettingsError as exc:
        sys.stderr.write(f"pushgate: {exc}\n")
        return 2
    except (LookupError, ValueError) as exc:
        sys.stderr.write(f"pushgate: {exc}\n")
        return 1
    except RedisError as exc:
        sys.stderr.write(f"pushgate: cannot reach Redis: {exc}\n")
        return 3
    except OSError as exc:
        sys.stderr.write(f"pushgate: {exc}\n")
        return 3


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
