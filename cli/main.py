"""The `dragoman` command line: one module per command group, assembled here."""

from __future__ import annotations

import typer

from cli import bench, gateway, loadtest, offline, worker

app = typer.Typer(help="Dragoman: self-hosted real-time speech translation.", no_args_is_help=True)
app.command()(gateway.serve)
app.command()(gateway.token)
app.command()(worker.worker)
app.command()(offline.translate)
app.command()(offline.models)
app.command()(offline.voices)
app.command("events-schema")(offline.events_schema)
app.add_typer(bench.bench_app, name="bench")
app.command()(loadtest.loadtest)

if __name__ == "__main__":  # pragma: no cover
    app()
