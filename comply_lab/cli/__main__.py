"""``python -m comply_lab.cli``: the ``comply-lab`` command."""

from comply_lab.cli import main

main()
