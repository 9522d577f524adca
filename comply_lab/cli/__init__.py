"""The ``comply-lab`` command.

Exit codes: 0 success, 1 an integrity problem was found (or, for ``decrypt``, a row could
not be decrypted), 2 bad usage or input. Errors are printed as one line; ``--debug`` shows
the traceback. Keys are read from files or the environment, never from arguments.
"""

from __future__ import annotations

from comply_lab.cli import data, integrity, policy
from comply_lab.cli.app import main

for _command in (*data.COMMANDS, *integrity.COMMANDS, *policy.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]
