"""Errors the agent raises to its caller (the worker decides retry vs give up)."""


class AgentUnavailableError(Exception):
    """A backend the agent needs (LLM, reranker, index) failed transiently; retrying may help."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
