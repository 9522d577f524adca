"""``Interaction`` and the safety hooks, kept importable here.

They live in `comply_lab.audit.interaction`:
``logger.interaction(...)`` is part of
the logger, so the class moved to the ``audit`` layer; this name stays for code written
against earlier releases.
"""

from comply_lab.audit.interaction import Interaction, SafetyCheck, SafetyVerdict

__all__ = ["Interaction", "SafetyCheck", "SafetyVerdict"]
