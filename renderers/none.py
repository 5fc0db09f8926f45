"""The none renderer: shows nothing (the run still writes events.jsonl)."""


class NoneRenderer:
    @classmethod
    def from_options(cls, options) -> "NoneRenderer":
        return cls()

    def handle(self, event: dict) -> None:
        pass

    def close(self) -> None:
        pass
