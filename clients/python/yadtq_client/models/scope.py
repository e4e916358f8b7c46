from enum import StrEnum


class Scope(StrEnum):
    ADMIN = "admin"
    CLUSTER = "cluster"
    METRICS = "metrics"
    OPERATE = "operate"
    READ = "read"
    SUBMIT = "submit"

    def __str__(self) -> str:
        return str(self.value)
