"""Every table, imported so ``metadata`` is complete (Alembic and the drift test use it)."""
from __future__ import annotations

import agent.llm_usage  # noqa: F401  (llm_usage: LLM tokens and cost per conversation)
import escalation.models  # noqa: F401  (tickets, staff topics)
import memory.memory_tables  # noqa: F401  (memory: short-term turns, summaries, profiles, facts)
import memory.models  # noqa: F401  (registers tables)
import memory.pdpa  # noqa: F401  (PDPA: consents, data requests, erasures)
import rag.catalog  # noqa: F401
import supportlah.admin.models  # noqa: F401  (admin: api keys, audit log, analytics aggregates)
import supportlah.console.models  # noqa: F401  (console: accounts and sessions)
from config.sql import Base

metadata = Base.metadata
