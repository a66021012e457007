"""What every `ouro` verb shares: exit codes, the `--store` option, argument parsing and error mapping.

Exit codes, the same for every verb:

- 0: done;
- 1 (:data:`EXIT_REFUSED`): the request was understood and refused (not found,
  pinned, a gate that did not promote, an unreadable store);
- 2 (:data:`EXIT_USAGE`): bad arguments or configuration;
- 3 (:data:`EXIT_CORRUPT`): a corrupt artifact: bytes that do not match their
  recorded sha256, or a model that does not load or breaks the ONNX contract.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

from pydantic import ValidationError

from ouroboros.trainer.agents.neural import ModelContractError
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts import store as st

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_CORRUPT = 0, 1, 2, 3
EXIT_CODES_EPILOG = "exit codes: 0 ok, 1 refused, 2 usage, 3 corrupt artifact (checksum mismatch or unloadable model)"


def flag_error(err: ValidationError, flags: Mapping[str, str] | None = None) -> ValueError:
    """A settings model's refusal of a flag's value, as one line naming the flag: ``--games: Input should
    be greater than or equal to 1`` (not pydantic's multi-line report on the field). The flag of a field
    is ``flags[field]``, else ``--field-name``; a rule over several fields keeps only its message."""
    problem = err.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else ""
    message = str(problem["msg"]).removeprefix("Value error, ")
    if not field:
        return ValueError(message)
    flag = (flags or {}).get(field, "--" + field.replace("_", "-"))
    return ValueError(f"{flag}: {message}")


def add_store_option(parser: argparse.ArgumentParser, what: str = "artifact store and model registry",
                     default: object = None) -> None:
    """``--store URL`` with the one default every verb uses ($OURO_STORE, else ./runs/registry).

    ``--registry`` is accepted as another spelling of the same option (``ouro serve`` used it).
    ``default=argparse.SUPPRESS`` is for a verb's parser whose command parser also has the
    option: the verb then keeps a value given before it."""
    parser.add_argument(
        "--store", "--registry", dest="store", default=reg.default_store() if default is None else default,
        metavar="URL",
        help=f"{what}: a directory, file://, memory://, s3://... (default: $OURO_STORE or {reg.DEFAULT_STORE})")


PREFLIGHT_FLAGS = (
    ("--min-free-memory", "min_free_memory_bytes", "1GiB", "refuse to start with less available memory"),
    ("--min-free-disk", "min_free_disk_bytes", "2GiB", "refuse to start with less free disk under a local store"),
)
"""(flag, PreflightThresholds field, default, help) of the resource checks `ouro train` and
`ouro schedule run` make before starting (``observability.preflight``)."""


def add_preflight_options(parser: argparse.ArgumentParser) -> None:
    """``--min-free-memory SIZE`` and ``--min-free-disk SIZE`` (0 turns a check off)."""
    for flag, _, default, text in PREFLIGHT_FLAGS:
        parser.add_argument(flag, default=default, metavar="SIZE",
                            help=f"{text} (default %(default)s; 0: no check)")


def preflight_thresholds(args: argparse.Namespace):
    """The ``PreflightThresholds`` of the flags; ValueError naming the flag if one is malformed."""
    from ouroboros.trainer.observability import preflight

    values = {}
    for flag, field, _, _ in PREFLIGHT_FLAGS:
        text = getattr(args, flag.lstrip("-").replace("-", "_"))
        try:
            values[field] = preflight.parse_bytes(text)
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None
    return preflight.PreflightThresholds(**values)


def preflight_args(args: argparse.Namespace) -> list[str]:
    """The preflight flags as given, to pass on to a child ``ouro train``."""
    return [x for flag, *_ in PREFLIGHT_FLAGS for x in (flag, getattr(args, flag.lstrip("-").replace("-", "_")))]


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """Parsed arguments, or the exit code argparse chose (0 for --help, 2 for a usage error)."""
    try:
        return parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        return int(e.code or 0)


def error(prog: str, message: object) -> None:
    """One line on stderr: ``ouro VERB: error: message``."""
    print(f"{prog}: error: {message}", file=sys.stderr)


def guarded(prog: str, action: Callable[[], int]) -> int:
    """Run ``action`` and map the errors a user can cause to exit codes with one line each
    (no traceback): corrupt or unloadable models 3, refusals 1."""
    try:
        return action()
    except (st.ChecksumError, ModelContractError) as e:
        error(prog, e)
        return EXIT_CORRUPT
    except (reg.RegistryError, st.ArtifactError, ValueError, OSError) as e:
        error(prog, e)
        return EXIT_REFUSED
