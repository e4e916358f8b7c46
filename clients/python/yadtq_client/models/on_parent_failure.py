from enum import StrEnum


class OnParentFailure(StrEnum):
    CANCEL = "cancel"
    RUN = "run"

    def __str__(self) -> str:
        return str(self.value)
