from enum import StrEnum


class TaskStatus(StrEnum):
    CANCELLED = "cancelled"
    FAILED = "failed"
    HELD = "held"
    PROCESSING = "processing"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SUCCESS = "success"
    WAITING = "waiting"

    def __str__(self) -> str:
        return str(self.value)
