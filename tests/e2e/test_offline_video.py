"""Offline video translation: `dragoman translate talk.mp4 --to pt` writes a lip-synced MP4 per
language, next to the captions, the WAV and the report of the audio-only path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np

from pipeline.audio import Audio, read_file
from pipeline.lipsync.drive import rms_envelope
from pipeline.lipsync.landmarks import FaceLandmarker, grey, lip_opening
from pipeline.lipsync.video import read_clip
from pipeline.offline_video import pieces

DRAGOMAN = Path(sys.executable).with_name("dragoman")


def test_timeline_keeps_pauses_and_follows_the_dub() -> None:
    speech = Audio(np.zeros(48000 * 2, np.float32), 48000)  # 2 s of dub for a 1 s segment
    timeline = pieces([(1.0, 2.0, 1.0, speech), (3.0, 4.0, 3.0, speech)], duration_s=5.0)
    assert [(p.src_start, p.src_end, p.out_start, p.out_end) for p in timeline] == [
        (0.0, 1.0, 0.0, 1.0),  # the opening pause at its own pace
        (1.0, 2.0, 1.0, 3.0),  # the segment, stretched to its dub
        (3.0, 4.0, 3.0, 5.0),  # the dub fills the rest: as long as the dub track (5 s)
    ]
    assert [p.speech is not None for p in timeline] == [False, True, True]
    tail = pieces([(1.0, 2.0, 1.0, speech)], duration_s=5.0)[-1]
    assert (tail.src_start, tail.src_end, tail.out_start, tail.out_end) == (2.0, 5.0, 3.0, 5.0)


def test_translate_writes_a_lip_synced_mp4_per_language(fixtures_dir: Path, tmp_path: Path) -> None:
    talk = fixtures_dir / "face" / "grid_lwbsza.mpg"
    done = subprocess.run(
        [str(DRAGOMAN), "translate", str(talk), "--to", "pt", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert {"grid_lwbsza.pt.mp4", "grid_lwbsza.pt.wav", "grid_lwbsza.pt.vtt"} <= names
    out = tmp_path / "grid_lwbsza.pt.mp4"
    with av.open(str(out)) as container:
        assert container.streams.video and container.streams.audio
    clip = read_clip(out)
    dub = read_file(tmp_path / "grid_lwbsza.pt.wav")
    assert clip.fps == 25
    assert abs(clip.duration_s - dub.duration_s) <= 2 / clip.fps  # picture as long as the dub
    landmarker = FaceLandmarker()
    faces = [landmarker.single_face(grey(frame)) for frame in clip.frames]
    opening = np.array([lip_opening(f.points) if f else np.nan for f in faces])
    loudness = rms_envelope(dub, len(clip.frames), clip.fps)
    keep = ~np.isnan(opening)
    r = float(np.corrcoef(opening[keep], loudness[keep])[0, 1])
    assert r >= 0.5, f"mouth vs dub r={r:.2f}"
