"""The ``pushgate`` command line: serve, worker, demo, tenant and key management, check."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from redis.exceptions import RedisError

from pushgate.logs import configure_logging
from pushgate.preflight import problems
from pushgate.settings import Settings, SettingsError, load_settings


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


async def _with_tenants(
    settings: Settings, action: str, args: argparse.Namespace
) -> dict[str, Any]:
    from approvals.store.backend import connect
    from approvals.store.tenants import TenantStore

    assert settings.redis_url is not None
    backend = connect(
        settings.redis_url,
        cluster=settings.redis_cluster,
        shards=settings.shards,
        wait_replicas=settings.replica_acks,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
    )
    tenants = TenantStore(backend)
    now_ms = int(time.time() * 1000)
    try:
        if action == "tenant-create":
            tenant_id, key_id, api_key = await tenants.create_tenant(args.name, now_ms)
            namesakes = [t for t in await tenants.tenants_named(args.name) if t != tenant_id]
            if namesakes:
                sys.stderr.write(
                    f"pushgate: note: {len(namesakes)} other tenant(s) are also named "
                    f"{args.name.strip()!r} ({', '.join(namesakes)}); a name is only a label, "
                    f"keys and data belong to the tenant id, so {tenant_id} is a separate, "
                    "empty tenant\n"
                )
            return {"tenant_id": tenant_id, "admin_key": api_key, "key_id": key_id}
        if action == "apikey-create":
            key_id, api_key = await tenants.create_key(args.tenant_id, args.role, now_ms)
            return {"key_id": key_id, "api_key": api_key, "role": args.role}
        if action == "apikey-revoke":
            if not await tenants.revoke_key(args.key_id):
                raise LookupError(f"unknown key {args.key_id}")
            return {"key_id": args.key_id, "revoked": True}
        if action == "check":
            info = await backend.redis.info("server")
            return {
                "ok": True,
                "redis": {"version": info.get("redis_version") or info.get("valkey_version")},
                "public_url": settings.public_url,
                "shards": settings.shards,
            }
        raise ValueError(action)
    finally:
        await backend.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pushgate", description="Push-notification login approval with TOTP fallback."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP + websocket gateway")
    serve.add_argument("--host", help="listen address (overrides PUSHGATE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (overrides PUSHGATE_PORT)")
    serve.add_argument("--with-worker", action="store_true", help="also run a push worker")
    sub.add_parser("worker", help="run a push worker")
    demo = sub.add_parser("demo", help="everything on one machine with an embedded Redis")
    demo.add_argument("--host", help="listen address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="listen port (default 8080)")
    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    tenant_create = tenant.add_parser(
        "create",
        help="create a tenant and its first admin key (every call makes a new tenant, "
        "even with a name already in use)",
    )
    tenant_create.add_argument("name", help="a label for the tenant, 1-200 characters")
    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = apikey.add_parser("create", help="create an API key (shown once)")
    key_create.add_argument("tenant_id")
    key_create.add_argument("--role", choices=["portal", "admin"], required=True)
    key_revoke = apikey.add_parser("revoke", help="revoke an API key by its id")
    key_revoke.add_argument("key_id")
    sub.add_parser("check", help="check everything serve and worker need (settings, files, Redis)")
    sub.add_parser("radius", help="run the RADIUS server for VPN and Wi-Fi logins")
    return parser


def _radius() -> int:
    """``pushgate radius``: settings from PUSHGATE_RADIUS_*, no Redis (a client of the API)."""
    from integrations.radius.service import serve_until_signalled
    from integrations.radius.settings import load_radius_settings

    settings = load_radius_settings()
    configure_logging(settings.log_level, settings.log_format)
    _run(serve_until_signalled(settings))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pushgate`` script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from pushgate.demo.runner import run_demo

            configure_logging("warning", "console", stream=sys.stderr)
            _run(run_demo(host=args.host, port=args.port))
            return 0
        if args.command == "radius":
            return _radius()
        if args.command == "serve":
            settings = _settings(host=args.host, port=args.port)
            _preflight(settings)
            configure_logging(settings.log_level, settings.log_format)
            from pushgate.runtime import serve, stop_on_signals

            async def _serve() -> None:
                stop = asyncio.Event()
                stop_on_signals(stop)
                await serve(settings, with_worker=args.with_worker, stop=stop)

            _run(_serve())
            return 0
        if args.command == "worker":
            settings = _settings()
            _preflight(settings)
            configure_logging(settings.log_level, settings.log_format)
            from pushgate.runtime import run_worker, stop_on_signals

            async def _work() -> None:
                stop = asyncio.Event()
                stop_on_signals(stop)
                await run_worker(settings, stop=stop)

            _run(_work())
            return 0
        settings = _settings()
        configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
        if args.command == "check":
            _preflight(settings)
        if settings.redis_url is None:
            raise SettingsError("PUSHGATE_REDIS_URL is required (redis:// or rediss://)")
        action = {"tenant": "tenant-", "apikey": "apikey-"}.get(args.command, "")
        action += getattr(args, "action", "") or args.command
        _print(_run(_with_tenants(settings, action, args)))
        return 0
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
