from enum import StrEnum


class WorkerState(StrEnum):
    DEAD = "dead"
    FENCED = "fenced"
    IDLE = "idle"
    JOINING = "joining"
    READY = "ready"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return str(self.value)
