from enum import StrEnum


class TaskStatus(StrEnum):
    CANCELLED = "cancelled"
    FAILED = "failed"
    PROCESSING = "processing"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SUCCESS = "success"
    WAITING = "waiting"

    def __str__(self) -> str:
        return str(self.value)
