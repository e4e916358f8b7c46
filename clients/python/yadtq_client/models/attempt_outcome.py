from enum import StrEnum


class AttemptOutcome(StrEnum):
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETRY = "retry"
    SUCCESS = "success"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"

    def __str__(self) -> str:
        return str(self.value)
