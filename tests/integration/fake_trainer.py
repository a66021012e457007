"""Test-only trainer wrapper: `ouro phase ...` with failures and pauses the tests control.

The operator under test is started with
`OURO_TRAINER_COMMAND="python fake_trainer.py --control DIR"`, so every phase
pod runs `python fake_trainer.py --control DIR phase NAME --run-config ...
--result ...`. Before handing over to the real `ouro` CLI it looks in DIR:

- `fail-<phase>` holding N: the first N runs of that phase exit 3 with an
  error message (an injected failure);
- `hold-<phase>`: wait until `release-<phase>` exists (so a test can act while
  the phase is running);

and it leaves `started-<phase>-<n>` behind for each run, so tests can wait for
a phase to be running. Product code never sees this file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ouroboros.trainer.commands import cli


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", type=Path, required=True)
    args, rest = parser.parse_known_args(argv)
    phase = rest[1]
    control = args.control
    runs = len(list(control.glob(f"started-{phase}-*")))
    (control / f"started-{phase}-{runs}").touch()
    if (control / f"hold-{phase}").exists():
        while not (control / f"release-{phase}").exists():
            time.sleep(0.1)
    fail = control / f"fail-{phase}"
    if fail.exists() and runs < int(fail.read_text() or "0"):
        print(f"injected failure {runs + 1} of phase {phase}", file=sys.stderr)
        result = rest[rest.index("--result") + 1]
        Path(result).write_text(f'{{"phase": "{phase}", "message": "injected failure {runs + 1}"}}')
        return 3
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
