"""WebVTT captions: translated text with the original beneath it, at the speech's real times."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.events import CaptionFinal


def vtt_timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    # "-->" and blank lines would end a cue early; '<' and '&' would start markup.
    flat = " ".join(text.split()).replace("-->", "→")
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(captions: Iterable[CaptionFinal]) -> str:
    """One cue per caption: the translation, then the source text in the speaker's voice tag."""
    lines = ["WEBVTT", ""]
    for number, caption in enumerate(captions, start=1):
        start, end = vtt_timestamp(caption.speech_start_s), vtt_timestamp(caption.speech_end_s)
        lines += [
            str(number),
            f"{start} --> {end}",
            f"<lang {caption.target_language}>{_cue_text(caption.target_text)}</lang>",
            f"<v {caption.source_language}><lang {caption.source_language}>"
            f"{_cue_text(caption.source_text)}</lang>",
            "",
        ]
    return "\n".join(lines)
