"""The ``mirage`` command line: thin wrappers over the library.

Every command validates its input at the edge; bad input ends with one line on
stderr (``error: FILE, line N, field 'F': ...``) and exit code 2, and no output
file is written (all writes are atomic). The commands live in the modules of
this package (``analysis``, ``score``, ``compare``, ``ingest``, ``eval``, ``transitions``,
``vision``, ``ladder``); the options they share in ``_options``. This module
only assembles them into :data:`app` and runs it (:func:`main`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from miragelab import __version__
from miragelab.cli import analysis
from miragelab.cli import compare as comparing
from miragelab.cli import forecast as forecasting
from miragelab.cli import score as scoring
from miragelab.cli._options import out, run_app
from miragelab.cli.eval import register as register_eval
from miragelab.cli.ingest import ingest_app
from miragelab.cli.ladder import ladder_app
from miragelab.cli.transitions import transitions_app
from miragelab.cli.vision import vision_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="mirage",
    help="Is an emergent ability real, or an artefact of the metric? (Schaeffer et al. 2023)",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"miragelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Rescore model outputs with any metric, fit scaling laws, and tell mirage from genuine."""


# the commands, in the order `mirage --help` lists them
app.command()(analysis.theory)
app.command()(scoring.score)
app.command()(comparing.compare)
app.command()(analysis.meta)
app.command()(analysis.fit)
app.command()(forecasting.forecast)
app.command()(analysis.plan)
app.command()(analysis.cost)
app.command()(analysis.reproduce)
app.command()(analysis.report)
app.command("metrics")(scoring.list_metrics)
app.command()(scoring.schema)
app.add_typer(ingest_app, name="ingest")
register_eval(app)  # eval, serve, task
app.add_typer(transitions_app, name="transitions")
app.add_typer(vision_app, name="vision")
app.add_typer(ladder_app, name="ladder")


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP (a ``timeout``, a job scheduler, a closed terminal) unwind the
    stack as Ctrl-C does, so a staging folder is removed and no half output is left."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns bad input into one line on stderr and exit code 2."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) in (
                signal.SIG_DFL,
                None,
            ):
                signal.signal(getattr(signal, name), _stop)
    run_app(app, argv)


if __name__ == "__main__":
    main()
