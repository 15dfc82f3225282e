"""`hacenter`: arguments, configuration and exit codes around the commands."""

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from hacenter_cli import __version__, commands
from hacenter_cli.client import Api
from hacenter_cli.config import load
from hacenter_cli.errors import EXIT_HELP, CliError, Exit

DESCRIPTION = """\
HA Center from scripts: the console's REST API (/api/v1/) on the command line.

configuration: HACENTER_URL (the console, e.g. https://hacenter.example) and HACENTER_TOKEN
(an API token: the console's API tokens page), or url and token in
~/.config/hacenter/config.toml (mode 600; HACENTER_CONFIG names another file).
The environment wins over the file. The token is never printed."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 1, not {value}")
    return value


def event_limit(text: str) -> int:
    value = positive_int(text)
    if value > 500:
        raise argparse.ArgumentTypeError("the API answers at most 500 events a page")
    return value


def job_limit(text: str) -> int:
    value = positive_int(text)
    if value > 200:
        raise argparse.ArgumentTypeError("the API answers at most 200 jobs a page")
    return value


def incident_limit(text: str) -> int:
    """A page size the incidents list accepts."""
    value = positive_int(text)
    if value > 200:
        raise argparse.ArgumentTypeError("the API answers at most 200 incidents a page")
    return value


def interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not 0.01 <= value <= 60:
        raise argparse.ArgumentTypeError("expected 0.01 to 60 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hacenter",
        description=DESCRIPTION,
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"hacenter {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="the API's JSON as is")
    polling = argparse.ArgumentParser(add_help=False)
    polling.add_argument(
        "--interval", type=interval, default=1.0, help="seconds between polls (default 1)"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable, text: str, parents: Sequence = ()
    ) -> argparse.ArgumentParser:
        found = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=EXIT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common, *parents],
        )
        found.set_defaults(run=run)
        return found

    command("clusters", commands.clusters, "every cluster: name, state, primary")
    found = command(
        "status", commands.status, "a cluster's members (like patronictl list) and proxy routes"
    )
    found.add_argument("cluster", help="the cluster's name or id")
    found = command("events", commands.events, "events, newest first")
    found.add_argument("cluster", nargs="?", help="the cluster's name or id (default: every one)")
    found.add_argument("--kind", action="append", help="only this kind (repeatable)")
    found.add_argument("--severity", action="append", help="only this severity (repeatable)")
    found.add_argument("--since", help="from this time (ISO 8601, UTC without an offset)")
    found.add_argument("--until", help="before this time (ISO 8601)")
    found.add_argument("--limit", type=event_limit, help="at most N events (1-500, default 50)")
    found.add_argument("--cursor", help="the next page, as the last page printed it")
    found = command(
        "incidents",
        commands.incidents,
        "a cluster's failovers, switchovers and outages, newest first; the open one told whole",
    )
    found.add_argument("cluster", help="the cluster's name or id")
    found.add_argument(
        "--limit", type=incident_limit, help="at most N incidents (1-200, default 50)"
    )
    found.add_argument("--cursor", help="the next page, as the last page printed it")
    found = command("jobs", commands.jobs, "recent jobs, newest first")
    found.add_argument("cluster", nargs="?", help="the cluster's name or id (default: every one)")
    found.add_argument("--kind", action="append", help="only this kind (repeatable)")
    found.add_argument("--status", action="append", help="only this status (repeatable)")
    found.add_argument("--limit", type=job_limit, help="at most N jobs (1-200, default 50)")
    found.add_argument("--cursor", help="the next page, as the last page printed it")
    found = command("job", commands.job, "one job: its status and steps")
    found.add_argument("job", type=positive_int, help="the job's id")
    found = command("switchover", commands.switchover, "planned change of primary", [polling])
    found.add_argument("cluster", help="the cluster's name or id")
    found.add_argument(
        "--to", metavar="NODE", help="the standby to promote (default: Patroni's choice)"
    )
    found.add_argument("--wait", action="store_true", help="follow the job; exit with its outcome")
    found = command("rebuild", commands.rebuild, "a node back as a streaming standby", [polling])
    found.add_argument("cluster", help="the cluster's name or id")
    found.add_argument("node", help="the database node to rebuild")
    found.add_argument("--full-copy", action="store_true", help="a fresh base backup, no pg_rewind")
    found.add_argument(
        "--from-primary",
        action="store_true",
        help="a full copy from the primary even when the backup repository could restore it",
    )
    found.add_argument("--wait", action="store_true", help="follow the job; exit with its outcome")
    found = command(
        "logs", commands.logs, "a job's log (--json: one line object per line)", [polling]
    )
    found.add_argument("job", type=positive_int, help="the job's id")
    found.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="print lines as they come until the job ends; exit with its outcome",
    )
    return top


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Run one command; the exit code (see `hacenter --help`)."""
    args = parser().parse_args(argv)  # exits 2 on a usage error
    try:
        api = Api(load(env))
        return int(args.run(api, args))
    except CliError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hacenter logs 12 | head`: the reader left; so do we, quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(Exit.OK)
