"""Typed results shared by every task (no torch, no numpy needed to read them).

Every task's API yields one result per input, in input order; each result has
    index     its input's 0-based position in the inputs
    name      its input's name (a path, "<array 3>", "line 12")
    error     None, or the one-line reason that input failed (the other inputs still get results)
    to_dict() the JSON record the writers (mms.writers) write
Timed text is the same everywhere: a `Word` (a word or a character, with start/end seconds and an optional
score) and a `Segment` (a stretch of text with its start/end and words), whose JSON keys are those of
Word.to_dict() and Segment.to_dict() in every task and every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    index: int
    error: str | None

    @property
    def name(self) -> str: ...

    def to_dict(self) -> dict: ...


class Task:
    """What every task object (ASR, LID, TTS, Aligner) shares besides its results: `with X.load(...) as x:` closes
    it at the end. close() releases what the task holds beyond memory (ASR: its beam-search worker processes);
    the others hold nothing more, and close() does nothing there."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Word:
    """A timed word or character: seconds from the start of the input; `score` a mean frame probability."""

    text: str
    start: float
    end: float
    score: float | None = None

    def to_dict(self) -> dict:
        record = {"text": self.text, "start": self.start, "end": self.end}
        if self.score is not None:
            record["score"] = self.score
        return record


@dataclass
class Segment:
    """A timed stretch of text (an aligned line, a subtitle cue) and its words."""

    text: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "words": [w.to_dict() for w in self.words]}


def shift_times(items: list[Word], start_offset: float, end_offset: float, duration: float) -> None:
    """Move the times of `items` (in order) by the offsets (a model's measured emission lag), keeping them inside
    [0, duration], every start at or after the previous end and every end after its start (where the audio
    leaves room: a word the offsets would end at or before its start, e.g. one at 0 s clamped there, keeps its own
    length instead of becoming a zero-length word and subtitle cue)."""
    if not (start_offset or end_offset):
        return
    previous_end = 0.0
    for item in items:
        start = min(max(item.start + start_offset, previous_end), duration)
        end = item.end + end_offset
        if end <= start:
            end = start + max(item.end - item.start, 0.001)
        end = min(end, duration)
        item.start, item.end = round(start, 3), round(end, 3)
        previous_end = end


# Subtitle cues from timed words: a new cue when the text would pass MAX_CUE_CHARS, the cue would last more
# than MAX_CUE_SECONDS, or the speaker pauses for more than MAX_CUE_GAP seconds between two words.
MAX_CUE_CHARS = 42
MAX_CUE_SECONDS = 7.0
MAX_CUE_GAP = 1.0


def cues(words: list[Word]) -> list[Segment]:
    """Timed words grouped into short subtitle cues."""
    out, current = [], []
    for word in words:
        if current:
            joined = " ".join(w.text for w in current) + " " + word.text
            if (len(joined) > MAX_CUE_CHARS or word.end - current[0].start > MAX_CUE_SECONDS
                    or word.start - current[-1].end > MAX_CUE_GAP):
                out.append(Segment(" ".join(w.text for w in current), current[0].start, current[-1].end, current))
                current = []
        current.append(word)
    if current:
        out.append(Segment(" ".join(w.text for w in current), current[0].start, current[-1].end, current))
    return out


class Record(dict):
    """A result as its JSON record (what workers return and corpus runs store): a dict that also follows the
    Result protocol, so the writers and mms.command.stream_results take it like a task's result object."""

    @property
    def index(self) -> int | None:
        return self.get("index")

    @property
    def name(self) -> str:
        return str(self.get("audio") or self.get("name") or self.get("text") or f"input {self.index}")

    @property
    def error(self) -> str | None:
        return self.get("error")

    def to_dict(self) -> dict:
        return self
