"""`dragoman bench lipsync`: milliseconds per 640x480 frame (one thread) and the cascade's τ with
lip-sync, on the GRID talking-head fixtures."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2

from bench.steps import Step
from pipeline.audio import read_file
from pipeline.cascade import Cascade, Utterance
from pipeline.errors import DragomanError
from pipeline.events import CaptionFinal
from pipeline.lipsync.base import Speech, VideoClip
from pipeline.lipsync.drive import energy_track
from pipeline.lipsync.landmark_syncer import LandmarkLipSyncer
from pipeline.lipsync.landmarks import FaceLandmarker, grey
from pipeline.lipsync.mouth import MouthReference, MouthRenderer
from pipeline.lipsync.phonemes import speech_for
from pipeline.lipsync.tracking import FaceTracker
from pipeline.lipsync.video import read_clip
from pipeline.models import Models, segmenter_config
from pipeline.segmenter import Segment, segment_stream

BENCH_SIZE = (640, 480)


def face_videos(face_dir: Path) -> list[Path]:
    """The GRID videos that have their audio as WAV next to them."""
    return [p for p in sorted(face_dir.glob("*.mpg")) if p.with_suffix(".wav").exists()]


def frame_times(landmarker: FaceLandmarker, clip: VideoClip, video: Path) -> list[float]:
    """Seconds per frame for what the landmark backend does to each frame (track, redraw),
    driven by the video's own loudness. A first pass finds the closed-mouth reference."""
    tracker = FaceTracker(landmarker)
    faces = [tracker.track(grey(frame)) for frame in clip.frames]
    reference = MouthReference.pick(clip.frames, faces)
    if reference is None:
        return []
    renderer = MouthRenderer(reference)
    drive = energy_track(read_file(video.with_suffix(".wav")), len(clip.frames), clip.fps)
    tracker, times = FaceTracker(landmarker), []
    for frame, openness in zip(clip.frames, drive, strict=True):
        start = time.perf_counter()
        face = tracker.track(grey(frame))
        if face is not None:
            renderer.render(frame, face, float(openness))
        times.append(time.perf_counter() - start)
    return times


def bench_frames(videos: list[Path], step: Step) -> dict[str, Any]:
    """Per-frame cost at 640x480 on one thread (GRID's 360x288 upscaled)."""
    cv2.setNumThreads(1)  # dlib's detector and shape predictor are single-threaded already
    landmarker = FaceLandmarker()
    times: list[float] = []
    for video in videos:
        step(f"lipsync frames {video.name}")
        times += frame_times(landmarker, read_clip(video, BENCH_SIZE), video)
    median = statistics.median(times) if times else 0.0
    return {
        "ms_per_frame_median": round(median * 1000, 2),
        "ms_per_frame_p95": round(sorted(times)[int(0.95 * (len(times) - 1))] * 1000, 2)
        if times
        else 0.0,
        "frames": len(times),
        "fps_equivalent": round(1 / median, 1) if median else 0.0,
        "frame_size": f"{BENCH_SIZE[0]}x{BENCH_SIZE[1]}",
    }


def _segment_clip(clip: VideoClip, segment: Segment) -> VideoClip:
    first = int(segment.start_s * clip.fps)
    last = max(first + 1, round(segment.end_s * clip.fps))
    return VideoClip(clip.frames[first:last], clip.fps)


class _CascadeWithLipSync:
    """The cascade for one target language, then lip-sync of the segment's frames."""

    def __init__(self, models: Models, target: str) -> None:
        self.models, self.target = models, target
        self.cascade = Cascade(
            models.recognizer,
            models.translator,
            models.voices,
            models.settings.asr_min_speech_ratio,
        )
        self.syncer = LandmarkLipSyncer()
        self.cascade_s = self.lipsync_s = self.speech_s = 0.0

    def run(self, video: Path) -> None:
        clip = read_clip(video, BENCH_SIZE)  # decoding: the camera's job in a call, not timed
        start = time.perf_counter()
        audio = read_file(video.with_suffix(".wav"))
        for segment in segment_stream(
            [audio.samples], self.models.new_vad(), segmenter_config(self.models.settings)
        ):
            speech = self._dub(segment)
            self.speech_s += segment.duration_s
            if speech is not None:
                synced = time.perf_counter()
                self.syncer.sync(_segment_clip(clip, segment), speech)
                self.lipsync_s += time.perf_counter() - synced
        self.cascade_s += time.perf_counter() - start

    def _dub(self, segment: Segment) -> Speech | None:
        utterance = Utterance(f"bench-{segment.index}", "bench", segment.index, "en", segment)
        result = self.cascade.process(utterance, [self.target])
        translation = result.translations.get(self.target)
        if translation is None or translation.speech is None:
            return None
        assert isinstance(translation.event, CaptionFinal)
        voice = self.models.voices.voice(self.target)
        return speech_for(voice, translation.event.target_text, translation.speech, self.target)


def bench_tau(models: Models, videos: list[Path], target: str, step: Step) -> dict[str, Any]:
    """(ASR + MT + TTS + lip-sync seconds) / speech seconds, English GRID clips → `target`."""
    step("lipsync warm-up")
    _CascadeWithLipSync(models, target).run(videos[0])
    run = _CascadeWithLipSync(models, target)
    for video in videos:
        step(f"cascade + lipsync {video.name}")
        run.run(video)
    speech = max(run.speech_s, 1e-9)
    return {
        "cascade_tau_with_lipsync": round(run.cascade_s / speech, 4),
        "lipsync_tau": round(run.lipsync_s / speech, 4),
        "cascade_target": target,
        "speech_s": round(run.speech_s, 2),
        "video_fps": read_clip(videos[0]).fps,
    }


def bench_lipsync(models: Models, face_dir: Path, step: Step, target: str = "pt") -> dict[str, Any]:
    """Both figures on every GRID video in `face_dir`."""
    videos = face_videos(face_dir)
    if not videos:
        raise DragomanError(f"no GRID videos with WAV audio in {face_dir}")
    return {**bench_frames(videos, step), **bench_tau(models, videos, target, step)}
