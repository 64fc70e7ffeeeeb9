"""The terminal approval prompt: end of input is an answer, never a hung run."""

from __future__ import annotations


class _Console:
    def __init__(self, *answers: str | type[BaseException]) -> None:
        self.answers = list(answers)

    def input(self, prompt: str) -> str:
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer
        return answer

    def print(self, *args: object) -> None:
        pass


def test_end_of_input_or_ctrl_c_reads_as_an_empty_answer() -> None:
    from cli.progress import read_answer as _read

    assert _read(_Console("  Yes \n"), "?") == "Yes"
    assert _read(_Console(EOFError), "?") == ""
    assert _read(_Console(KeyboardInterrupt), "?") == ""
