"""What every face-based backend works out before drawing: which source frame each output frame
shows, the face in each of those frames, and the mouth drive."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.lipsync.base import Speech, VideoClip
from pipeline.lipsync.drive import Track, frame_count, mouth_track
from pipeline.lipsync.landmarks import Face, grey
from pipeline.lipsync.retime import source_indices
from pipeline.lipsync.tracking import FaceTracker
from pipeline.metrics import LIPSYNC_FRAMES


@dataclass(frozen=True)
class SyncPlan:
    """Per output frame: its source frame and openness; per used source frame: its face."""

    indices: list[int]
    faces: dict[int, Face | None]
    drive: Track


def plan(clip: VideoClip, speech: Speech, tracker: FaceTracker) -> SyncPlan:
    """Retime the clip to the speech and track the face through the frames that are shown
    (in source order, so the tracker follows the video as it was filmed)."""
    count = frame_count(speech.audio.duration_s, clip.fps)
    indices = source_indices(len(clip.frames), count)
    faces = {index: tracker.track(grey(clip.frames[index])) for index in sorted(set(indices))}
    return SyncPlan(indices, faces, mouth_track(speech, clip.fps)[: len(indices)])


def count_outcomes(backend: str, synced: int, passthrough: int) -> None:
    """dragoman_lipsync_frames_total{backend, outcome="synced"|"passthrough"}."""
    LIPSYNC_FRAMES.labels(backend, "synced").inc(synced)
    LIPSYNC_FRAMES.labels(backend, "passthrough").inc(passthrough)
