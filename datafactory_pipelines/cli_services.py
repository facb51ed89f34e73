"""`datafactory run-services`: serve (with the notification dispatcher), the Dagster daemon and webserver."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


def prepare_dagster_home(paths: Paths) -> Path:
    """DAGSTER_HOME with datafactory's dagster.yaml (written unless one is there), its storage created once:
    a daemon and a webserver started together on a fresh folder would otherwise both create the SQLite
    schemas (seen: "alembic_version has more than one head")."""
    import dagster as dg

    from datafactory_pipelines.cli import _dagster_home

    home = _dagster_home(paths)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
    return home


def cmd_run_services(args: argparse.Namespace, paths: Paths) -> int:
    from datafactory_pipelines.cli import _dagster_home
    from datafactory_pipelines.services import SERVICES, Supervisor, service_commands, services_env

    wanted = [name.strip() for name in args.services.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SERVICES))
    if unknown or not wanted:
        raise ValueError(f"--services: unknown {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(SERVICES)}")
    dagster_home = prepare_dagster_home(paths) if {"daemon", "webserver"} & set(wanted) else _dagster_home(paths)
    commands = service_commands(args.host, args.port, args.ui_host, args.ui_port)
    supervisor = Supervisor({name: commands[name] for name in wanted}, services_env(paths.home, dagster_home),
                            paths.home / "services", say=lambda text: print(f"run-services: {text}", flush=True))
    print(f"run-services: DATAFACTORY_HOME={paths.home} DAGSTER_HOME={dagster_home}; events on "
          f"http://{args.host}:{args.port}" + (f", Dagster UI on http://{args.ui_host}:{args.ui_port}"
                                                if "webserver" in wanted else ""), flush=True)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


def cmd_dagster_home(args: argparse.Namespace, paths: Paths) -> int:
    home = prepare_dagster_home(paths)
    print(home, flush=True)  # e.g. ExecStartPre of a dagster-daemon unit: its dagster.yaml is then in place
    return 0


def add_services_command(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "run-services", "the unattended deployment: serve with the notification dispatcher, "
                                         "the Dagster daemon and webserver, each started again when it ends",
                    description="Start `serve --dispatch` (POST /events; events applied and owners told at once), "
                                "dagster-daemon and dagster-webserver with one environment (DATAFACTORY_HOME, "
                                "DAGSTER_HOME and its dagster.yaml), and start again any that ends. SIGTERM stops "
                                "them all. See docs/notifications-deployment.md.")
    p.add_argument("--host", default="127.0.0.1", help="where `serve` listens")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--ui-host", default="127.0.0.1", help="where the Dagster webserver listens")
    p.add_argument("--ui-port", type=int, default=3000)
    p.add_argument("--services", default="serve,daemon,webserver",
                   help="which to run, comma-separated (default: serve,daemon,webserver)")
    p.set_defaults(func=cmd_run_services)

    p = add_command(sub, "dagster-home", "write dagster.yaml into DAGSTER_HOME (default $DATAFACTORY_HOME/"
                                         "dagster_home) unless one is there, create its storage, print the folder")
    p.set_defaults(func=cmd_dagster_home)
