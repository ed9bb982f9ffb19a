"""The default CPU backend: dlib landmarks, a warped closed-mouth reference, visemes or loudness."""

from __future__ import annotations

from pipeline.lipsync.base import Frame, LipSyncer, Speech, VideoClip
from pipeline.lipsync.landmarks import FaceLandmarker
from pipeline.lipsync.mouth import MouthReference, MouthRenderer
from pipeline.lipsync.plan import count_outcomes, plan
from pipeline.lipsync.tracking import FaceTracker


class LandmarkLipSyncer(LipSyncer):
    """Redraws the speaker's mouth frame by frame. Safe to share between threads: each call
    tracks its clip with a tracker of its own."""

    name = "landmarks"

    def __init__(self, landmarker: FaceLandmarker | None = None, detect_every: int = 10) -> None:
        self._landmarker = landmarker or FaceLandmarker()
        self._detect_every = detect_every

    def sync(self, clip: VideoClip, speech: Speech) -> VideoClip:
        steps = plan(clip, speech, FaceTracker(self._landmarker, self._detect_every))
        used = sorted(steps.faces)
        reference = MouthReference.pick(
            [clip.frames[i] for i in used], [steps.faces[i] for i in used]
        )
        renderer = MouthRenderer(reference) if reference is not None else None
        frames: list[Frame] = []
        for index, openness in zip(steps.indices, steps.drive, strict=True):
            face, frame = steps.faces[index], clip.frames[index]
            if face is None or renderer is None:
                frames.append(frame)  # passthrough: the very same pixels
            else:
                frames.append(renderer.render(frame, face, float(openness)))
        synced = sum(steps.faces[i] is not None for i in steps.indices) if renderer else 0
        count_outcomes(self.name, synced, len(frames) - synced)
        return VideoClip(frames, clip.fps)
