"""Drop-in audit logging for AI clients: any code, OpenAI-compatible clients, LangChain.

``Interaction`` (``logger.interaction(...)``) records one call around any code; the OpenAI
wrapper ([`comply_lab.integrations.openai`][comply_lab.integrations.openai]) and the LangChain
callback handler ([`comply_lab.integrations.langchain`][comply_lab.integrations.langchain]) use
it, and import their libraries only when used (``pip install comply-lab[integrations]``).
"""

from comply_lab.audit.interaction import Interaction, SafetyCheck, SafetyVerdict

__all__ = ["Interaction", "SafetyCheck", "SafetyVerdict"]
