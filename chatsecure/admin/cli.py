"""``chatsecure-admin`` entry point: parse arguments, run one command, report failure once.

Every failure a user can cause - a bad argument, a broken config, a refused name, a weak
password, a missing file - ends here as ``chatsecure-admin: error: ...`` and an exit code,
never as a traceback. Streams are parameters, so tests drive ``main`` without touching
``sys``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from sqlalchemy.exc import OperationalError

from chatsecure.admin.base import CommandError, Context
from chatsecure.admin.commands import COMMANDS
from chatsecure.config import CONFIG_ENV, ConfigError
from chatsecure.package import version_text
from chatsecure.passwords import WeakPasswordError
from chatsecure.storage.backup import BackupError
from chatsecure.storage.store import StoreError

PROG = "chatsecure-admin"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


CONFIG_HELP = f"the config.toml to use (default: ${CONFIG_ENV}, else ./config.toml)"


class _ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse writing to the injected streams and raising instead of calling sys.exit."""

    def __init__(self, *args: object, stdout: TextIO, stderr: TextIO, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stdout = stdout
        self.stderr = stderr

    def add_subparsers(self, **kwargs: Any) -> Any:
        """Subcommands (and theirs) write to the same streams, with the same help format,
        and take ``--config`` too."""
        kwargs.setdefault(
            "parser_class",
            functools.partial(
                _CommandParser,
                stdout=self.stdout,
                stderr=self.stderr,
                formatter_class=_HelpFormatter,
            ),
        )
        return super().add_subparsers(**kwargs)

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            (self.stderr if file in (sys.stderr, self.stderr) else self.stdout).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.stderr.write(message)
        raise _ParserExit(status)


class _CommandParser(_Parser):
    """A command's (or a command's action's) parser: ``--config`` may follow its name.

    SUPPRESS keeps one given earlier (``chatsecure-admin --config X room create ...``)
    when it is not given here again.
    """

    def __init__(self, *args: object, stdout: TextIO, stderr: TextIO, **kwargs: object) -> None:
        super().__init__(*args, stdout=stdout, stderr=stderr, **kwargs)
        self.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)


class _HelpFormatter(argparse.HelpFormatter):
    """Text wrapped to the terminal's width, except indented lines: the examples."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            line if line.startswith(" ") else textwrap.fill(line, width, initial_indent=indent)
            for line in text.splitlines()
        )


def build_parser(stdout: TextIO, stderr: TextIO) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Administer a chatsecure server: set-up and checks, the database and "
        "its backups, certificates, accounts, rooms and history export.",
        epilog=f"The configuration comes from --config, else ${CONFIG_ENV}, else ./config.toml. "
        f"Run '{PROG} COMMAND --help' for a command's details and examples.",
        formatter_class=_HelpFormatter,
        stdout=stdout,
        stderr=stderr,
    )
    parser.add_argument("--version", action="version", version=version_text(PROG))
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        examples = "\n".join(f"  {line}" for line in command.examples)
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=f"example{'s' if len(command.examples) > 1 else ''}:\n{examples}",
        )
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command; returns the exit status (0 success, 1 failure, 2 usage)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser(stdout, stderr).parse_args(argv)
    except _ParserExit as exc:
        return exc.status
    context = Context(args.config, stdin, stdout, stderr)
    try:
        args.run(context, args)
        stdout.flush()
    except CommandError as exc:
        return _fail(stderr, exc.message, exc.exit_code)
    except (BackupError, ConfigError, StoreError, WeakPasswordError) as exc:
        return _fail(stderr, str(exc), EXIT_FAILURE)
    except OperationalError as exc:
        return _fail(stderr, f"database: {exc.orig}", EXIT_FAILURE)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(stderr, f"{exc.strerror or exc}{where}", EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail(stderr, "interrupted", EXIT_INTERRUPTED)
    finally:
        context.close()
    return 0


def _fail(stderr: TextIO, message: str, code: int) -> int:
    stderr.write(f"{PROG}: error: {message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
