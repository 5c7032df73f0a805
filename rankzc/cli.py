"""The ``rankzc`` command line.

Commands live in :mod:`rankzc.commands`, one module per topic; every module
there that defines ``COMMANDS`` is registered here. User mistakes
(:class:`~rankzc.errors.RankzcError`, missing files) are shown as one line
``Error: ...`` with exit code 1; set ``RANKZC_DEBUG=1`` to see the traceback.

Exit codes: 0 success; 1 an error (bad input, a missing file, nothing could be computed);
2 a usage error (an unknown option, or a choice of options that cannot work, refused
before any work: :class:`~rankzc.errors.UsageError`); 3 the results were printed but part
of the work failed (:class:`~rankzc.errors.PartialFailure`, e.g. a model in
``evaluate --models`` that could not be fitted; ``--keep-going`` exits 0 instead).
"""

from __future__ import annotations

import importlib
import os
import pkgutil

import click

from rankzc import __version__
from rankzc.errors import RankzcError


class _UsageError(click.ClickException):
    exit_code = 2


class _Group(click.Group):
    """A click group that turns user errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # stdout closed by its reader (``| head``): what was stored stays stored;
            # no traceback, and no second error when Python flushes stdout at exit
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
            click.echo("Error: standard output closed before the output was written", err=True)
            ctx.exit(1)
        except click.UsageError as err:
            if os.environ.get("RANKZC_DEBUG") or ctx.resilient_parsing:
                raise
            raise _UsageError(err.format_message().replace("\n", " ")) from None
        except (RankzcError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
            if os.environ.get("RANKZC_DEBUG"):
                raise
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            exc = click.ClickException(msg)
            exc.exit_code = getattr(err, "exit_code", 1)
            raise exc from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list with each command's first sentence in full (click cuts it)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rankzc")
def main() -> None:
    """Rank GCN architectures with zero-cost proxies, without training them."""
    from rankzc.progress import guard_streams

    guard_streams()  # progress and warnings never fatal, never on stdout (rankzc.progress)


def _register() -> None:
    import rankzc.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
