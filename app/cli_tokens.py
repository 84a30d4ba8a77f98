"""`gnomon token`: make API tokens and the metrics token, offline.

Each command prints the new token alone on stdout, once, and on stderr the
configuration line that holds only its digest, with what to do with it.
"""

from __future__ import annotations

import click

from app.auth import Scope, digest, entry, name_problem, new_token


def register(group: click.Group) -> None:
    """Add the `token` commands to `group`."""
    group.add_command(token)


@click.group()
def token() -> None:
    """Make tokens for the API and for /_internal_/metrics."""


def valid_name(_ctx: click.Context, _param: click.Parameter, name: str) -> str:
    """NAME, if it can name a token."""
    problem = name_problem(name)
    if problem:
        raise click.BadParameter(problem)
    return name


@token.command()
@click.argument("name", callback=valid_name)
@click.option(
    "--scope",
    type=click.Choice([scope.value for scope in Scope]),
    required=True,
    help="read: GET only; write: also change definitions, trigger, pause, resume, kill, "
    "retry and report for tasks; admin: everything.",
)
def create(name: str, scope: str) -> None:
    """Make an API token called NAME (the audit trail shows NAME)."""
    secret = new_token()
    click.echo(secret)
    click.echo(
        f"API token {name!r} (scope {scope}) is printed above, once; keep it secret and give "
        "it to its user (GNOMON_TOKEN for the gnomon command).\n"
        "Add this line to the file named by GNOMON_API_TOKENS_FILE (or to GNOMON_API_TOKENS, "
        "comma-separated), then restart gnomon serve:\n"
        f"{entry(name, Scope(scope), secret)}",
        err=True,
    )


@token.command()
def metrics() -> None:
    """Make a token that may read /_internal_/metrics and nothing else."""
    secret = new_token()
    click.echo(secret)
    click.echo(
        "Metrics token printed above, once; give it to Prometheus as its bearer token.\n"
        "Set this in gnomon serve's environment, then restart it:\n"
        f"GNOMON_METRICS_TOKEN_SHA256={digest(secret)}",
        err=True,
    )
