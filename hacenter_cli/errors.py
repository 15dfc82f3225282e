"""The exit codes scripts can rely on, and the error that carries one to `main`."""

from enum import IntEnum


class Exit(IntEnum):
    """What `hacenter` exits with. Stable: scripts test these numbers."""

    OK = 0  # success; for a job: it succeeded
    JOB_FAILED = 1  # the job failed, errored, was canceled or lost
    USAGE = 2  # bad arguments or configuration (argparse uses 2 as well)
    NOT_FOUND = 3  # no such cluster, node or job (a 404)
    REFUSED = 4  # the console refused the request (a 4xx other than 404)
    UNREACHABLE = 5  # the console cannot be reached, or answered with a server error


EXIT_HELP = """\
exit codes:
  0  success (for --wait, --follow: the job succeeded)
  1  the job failed, errored, was canceled or lost
  2  usage error: bad arguments or configuration
  3  not found: no such cluster, node or job
  4  refused by the console (a 4xx other than 404; its message is printed)
  5  the console cannot be reached, or answered with a server error"""


class CliError(Exception):
    """An error to print on stderr (with the API's field errors, if any) before exiting."""

    def __init__(
        self,
        code: Exit,
        message: str,
        field_errors: dict[str, list[str]] | None = None,
        *,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.field_errors = code, message, field_errors or {}
        self.http_status = http_status  # the console's answer, when there was one

    def lines(self) -> list[str]:
        """The message, then one line per field error (`field: message`)."""
        out = [f"hacenter: {self.message}"]
        for field, messages in self.field_errors.items():
            items = messages if isinstance(messages, list) else [messages]
            out.extend(f"  {field}: {m}" for m in items)
        return out
