"""A realistic synthetic workload for demos, benchmarks, tests and notebooks.

Traffic follows a working-day rhythm across several providers and models; conversations
have several turns; about 8% of requests are blocked by safety detectors (with detector
names, block reasons and alerts); latencies are lognormal per model; token counts and
user/department metadata are filled in. Everything derives from one seed.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab._time import utc_now
from comply_lab.audit.logger import AuditLogger
from comply_lab.keys.encryption import EncryptionManager


@dataclass(frozen=True)
class _Model:
    provider: str
    model: str
    weight: float
    median_ms: float
    sigma: float


MODELS = (
    _Model("openai", "gpt-4o", 0.30, 900.0, 0.50),
    _Model("openai", "gpt-4o-mini", 0.20, 380.0, 0.45),
    _Model("anthropic", "claude-3-5-sonnet", 0.22, 1100.0, 0.50),
    _Model("anthropic", "claude-3-haiku", 0.10, 330.0, 0.40),
    _Model("google", "gemini-1.5-pro", 0.10, 1000.0, 0.55),
    _Model("meta", "llama-3-70b-instruct", 0.08, 620.0, 0.60),
)
DEPARTMENTS = ("finance", "legal", "hr", "engineering", "support", "research")
USE_CASES = ("summarization", "drafting", "code_review", "qa", "translation", "analysis")
DETECTORS = (
    ("prompt_injection", "Prompt injection attempt", 0.28),
    ("pii", "Personal data in request", 0.24),
    ("harmful_content", "Content violates safety policy", 0.18),
    ("jailbreak", "Jailbreak pattern detected", 0.14),
    ("illegal_activity", "Request for illegal activity", 0.09),
    ("self_harm", "Self-harm risk", 0.07),
)
TOPICS = (
    "the quarterly report",
    "our refund policy",
    "this contract clause",
    "the incident log",
    "a SQL query",
    "the onboarding guide",
    "patient intake notes",
    "the budget forecast",
)
ASKS = ("Summarize", "Explain", "Review", "Translate", "Draft a reply about", "List risks in")
BLOCK_RATE = 0.08


@dataclass(frozen=True)
class Interaction:
    """One synthetic interaction: the time it happens and the arguments of ``log()``."""

    when: datetime
    fields: dict[str, Any]


def _hourly_weight(moment: datetime) -> float:
    """Relative traffic: a working-day curve, quieter at weekends."""
    hour = moment.hour + moment.minute / 60
    daytime = math.exp(-(((hour - 14.0) / 4.0) ** 2))
    weekend = 0.35 if moment.weekday() >= 5 else 1.0
    return (0.08 + daytime) * weekend


def interactions(
    entries: int, days: int, *, end: datetime | None = None, seed: int = 7
) -> Iterator[Interaction]:
    """Yield ``entries`` interactions spread over ``days`` days before ``end``, in time order.

    Args:
        entries: How many interactions.
        days: Length of the period.
        end: End of the period (aware); defaults to now.
        seed: Seed of the random generator: the same seed gives the same data.
    """
    rng = random.Random(seed)
    stop = (end or utc_now()).astimezone(UTC)
    start = stop - timedelta(days=days)
    span = (stop - start).total_seconds()
    # Conversation starts follow the traffic curve (rejection sampling), turns follow them.
    starts: list[float] = []
    while len(starts) < entries:
        offset = rng.random() * span
        if rng.random() < _hourly_weight(start + timedelta(seconds=offset)) / 1.08:
            starts.append(offset)
    events: list[tuple[float, int, int]] = []
    for conversation, offset in enumerate(starts, 1):
        if len(events) >= entries:
            break
        turn_time = offset
        for turn in range(min(1 + int(rng.expovariate(1 / 2.5)), 12)):
            if len(events) >= entries or turn_time >= span:
                break
            events.append((turn_time, conversation, turn))
            turn_time += rng.uniform(20, 240)
    events.sort()
    weights = [m.weight for m in MODELS]
    users = [f"user-{i:04d}" for i in range(240)]
    conv_model: dict[int, _Model] = {}
    conv_user: dict[int, str] = {}
    for offset, conv, turn in events:
        model = conv_model.setdefault(conv, rng.choices(MODELS, weights)[0])
        user = conv_user.setdefault(conv, rng.choice(users))
        yield Interaction(start + timedelta(seconds=offset), _fields(rng, model, user, conv, turn))


def _fields(rng: random.Random, model: _Model, user: str, conv: int, turn: int) -> dict[str, Any]:
    prompt = f"{rng.choice(ASKS)} {rng.choice(TOPICS)} (turn {turn + 1})"
    input_tokens = max(5, int(rng.lognormvariate(math.log(220), 0.7)))
    department = DEPARTMENTS[int(user.rsplit("-", 1)[1]) % len(DEPARTMENTS)]
    metadata = {
        "user_id": user,
        "department": department,
        "use_case": rng.choice(USE_CASES),
        "app_version": rng.choice(("2.3.1", "2.4.0")),
    }
    fields: dict[str, Any] = {
        "input": prompt,
        "provider": model.provider,
        "model": model.model,
        "conversation_id": f"conv-{conv:07d}",
        "input_tokens": input_tokens,
        "metadata": metadata,
    }
    if rng.random() < BLOCK_RATE:
        names = [d[0] for d in DETECTORS]
        first = rng.choices(DETECTORS, [d[2] for d in DETECTORS])[0]
        fired = [first[0]]
        if rng.random() < 0.3:
            fired.append(rng.choice([n for n in names if n != first[0]]))
        at_input = rng.random() < 0.7
        fields.update(
            output="",
            safety_passed=False,
            detectors_triggered=fired,
            block_reason=first[1],
            alerts=[f"{first[0]} detector fired", "User warned"],
            latency_ms=round(
                rng.lognormvariate(math.log(45 if at_input else model.median_ms), model.sigma), 3
            ),
            output_tokens=0,
        )
        metadata["blocked_at"] = "input" if at_input else "output"
        return fields
    alerts = ["PII redacted from output"] if rng.random() < 0.02 else []
    fields.update(
        output=f"Here is a response about {prompt.lower()}.",
        safety_passed=True,
        alerts=alerts,
        latency_ms=round(rng.lognormvariate(math.log(model.median_ms), model.sigma), 3),
        output_tokens=max(1, int(rng.lognormvariate(math.log(300), 0.6))),
    )
    return fields


SAMPLE_SECRET = b"comply-lab sample data: a published test secret, never a real key"
"""Seed of the keys of the shipped sample log. It is public: never use them for real logs."""


def sample_keys() -> tuple[EncryptionManager, Ed25519PrivateKey]:
    """Return the encryption manager and signing key of the shipped sample log.

    Both derive from [`SAMPLE_SECRET`][comply_lab.sample.SAMPLE_SECRET], so the sample
    regenerates with the same keys and notebooks can decrypt and verify it. They are test keys,
    published on purpose.
    """
    material = hashlib.sha256(SAMPLE_SECRET).digest()
    encryption = EncryptionManager(base64.urlsafe_b64encode(material))
    signing = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(material).digest())
    return encryption, signing


def write_sample(
    make_logger: Callable[[Callable[[], datetime]], AuditLogger],
    entries: int,
    days: int,
    *,
    end: datetime | None = None,
    seed: int = 7,
) -> AuditLogger:
    """Log a synthetic workload through a logger whose clock replays the sample's times.

    Args:
        make_logger: Builds the logger from the clock it must use.
        entries: How many interactions.
        days: Length of the period.
        end: End of the period; defaults to now.
        seed: Seed of the random generator.

    Returns:
        The logger, still open.
    """
    current = [utc_now()]
    logger = make_logger(lambda: current[0])
    for item in interactions(entries, days, end=end, seed=seed):
        current[0] = item.when
        logger.log_sync(**item.fields)
    return logger
