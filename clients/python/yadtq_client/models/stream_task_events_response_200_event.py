from enum import StrEnum


class StreamTaskEventsResponse200Event(StrEnum):
    PROGRESS = "progress"
    STATUS = "status"

    def __str__(self) -> str:
        return str(self.value)
