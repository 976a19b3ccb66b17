"""``ntknas dashboard``: optuna-dashboard on a study, each trial annotated for NAS."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from ntknas.cli.common import (
    DataRootOpt,
    DeviceOpt,
    StorageOpt,
    StudyArg,
    out,
    resolve_device,
    stop_requests,
    user_errors,
    warn,
)


def command(
    study: StudyArg = None,
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free port).")] = 8080,
    host: Annotated[
        str, typer.Option(help="Address to bind: 127.0.0.1 keeps the dashboard on this machine.")
    ] = "127.0.0.1",
    artifacts: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the spectrum images \\[default: the SQLite file's name + .artifacts beside it, "
            "results/artifacts for a database server].",
            show_default=False,
        ),
    ] = None,
    data_root: DataRootOpt = None,
    device: DeviceOpt = "auto",
    storage: StorageOpt = None,
) -> None:
    """Watch a study in optuna-dashboard, in a web browser.

    Each trial carries a note with its architecture, scores and (once verified) accuracy, and its
    pNTK eigenspectrum as an image; trials that finish while it runs are annotated within seconds.
    Needs the optional extra: pip install 'ntknas[dashboard]'.
    """
    from ntknas.outputs import dashboard

    with user_errors(storage), stop_requests() as stopping:
        if not 0 <= port <= 65535:
            raise ValueError(f"--port must be between 0 and 65535; got {port}")
        exposed = (
            f"--host {host} serves the dashboard, which has no login and can delete studies, to other "
            "machines; use --host 127.0.0.1 unless every machine that reaches it may"
        )
        dashboard.serve(
            storage,
            study,
            echo=lambda line: out.print(line, highlight=False, soft_wrap=True),
            serving=None if loopback(host) else lambda: warn(exposed),
            host=host,
            port=port,
            artifact_dir=artifacts,
            data_root=data_root,
            device=resolve_device(device),
        )
    if stopping.terminated:  # Ctrl-C is how a dashboard is stopped; SIGTERM says so in its code
        raise typer.Exit(stopping.exit_code())


def loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only: localhost or a loopback address."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any address
        return False
