"""Lip-sync on the GRID talking-head fixtures: the mouth follows the translated speech (measured
with the same landmarks), timing, passthrough of faceless frames, stills, the neural adapter."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from bench.lipsync import bench_frames
from pipeline.audio import Audio, read_file
from pipeline.lipsync.base import Frame, PhonemeTiming, Speech, VideoClip
from pipeline.lipsync.drive import energy_track, frame_count, mouth_track, rms_envelope
from pipeline.lipsync.factory import LIPSYNC_BACKENDS, build_lipsyncer
from pipeline.lipsync.landmark_syncer import LandmarkLipSyncer
from pipeline.lipsync.landmarks import FaceLandmarker, grey, lip_opening, plausible
from pipeline.lipsync.melspec import frame_windows, log_mel
from pipeline.lipsync.neural import NeuralLipSyncer
from pipeline.lipsync.phonemes import espeak_phonemes, espeak_speech, piper_phonemes, speech_for
from pipeline.lipsync.retime import source_indices
from pipeline.lipsync.video import read_clip
from pipeline.lipsync.visemes import openness
from pipeline.models import voice_context
from pipeline.settings import Settings
from pipeline.tts.espeak import EspeakSynthesizer
from pipeline.tts.voices import DEFAULT_VOICES, build_voice

TRANSLATED = "Coloque o azul em F dois agora, por favor."  # GRID's "place blue at f two now"
Series = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def face_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "face"


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker()


@pytest.fixture(scope="module")
def syncer(landmarker: FaceLandmarker) -> LandmarkLipSyncer:
    return LandmarkLipSyncer(landmarker)


@pytest.fixture(scope="module")
def speaker(face_dir: Path) -> VideoClip:
    """GRID lwbsza: her lips visibly follow her own speech (r ≈ 0.57 by these landmarks)."""
    return read_clip(face_dir / "grid_lwbsza.mpg")


@pytest.fixture(scope="module")
def portuguese() -> EspeakSynthesizer:
    return EspeakSynthesizer("pt-br")


@pytest.fixture(scope="module")
def translated(portuguese: EspeakSynthesizer) -> Speech:
    """The translated speech as the TTS stage makes it, with espeak-ng's phoneme timings."""
    audio = portuguese.synthesize(TRANSLATED, "pt")
    return speech_for(portuguese, TRANSLATED, audio, "pt")


def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DRAGOMAN_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def openings(landmarker: FaceLandmarker, frames: list[Frame]) -> Series:
    """Inner-lip opening per frame, detected afresh on each (NaN where no single face)."""
    found = [landmarker.single_face(grey(frame)) for frame in frames]
    return np.array([lip_opening(f.points) if f else np.nan for f in found])


def pearson(a: Series, b: Series) -> float:
    keep = ~(np.isnan(a) | np.isnan(b))
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def counted(outcome: str) -> float:
    labels = {"backend": "landmarks", "outcome": outcome}
    return REGISTRY.get_sample_value("dragoman_lipsync_frames_total", labels) or 0.0


def contact_sheet(rows: list[list[Frame]], path: Path) -> Path:
    sheet = np.vstack([np.hstack(row) for row in rows])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def face_crop(frame: Frame) -> Frame:
    """lwbsza's lower face, twice its size."""
    crop = frame[115:245, 110:240]
    return np.asarray(cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), np.uint8)


# --- the mouth follows the translated speech -------------------------------------------------


@pytest.mark.parametrize("drive", ["phonemes", "audio"])
def test_mouth_follows_translated_speech_not_the_original(
    syncer: LandmarkLipSyncer,
    landmarker: FaceLandmarker,
    speaker: VideoClip,
    translated: Speech,
    face_dir: Path,
    drive: str,
    tmp_path: Path,
) -> None:
    speech = translated if drive == "phonemes" else Speech(translated.audio)
    original = read_file(face_dir / "grid_lwbsza.wav")
    before = openings(landmarker, speaker.frames)
    assert pearson(before, rms_envelope(original, len(speaker.frames), speaker.fps)) >= 0.45

    out = syncer.sync(speaker, speech)
    after = openings(landmarker, out.frames)
    shown = source_indices(len(speaker.frames), len(out.frames))
    original_envelope = rms_envelope(original, len(speaker.frames), speaker.fps)[shown]

    assert pearson(after, rms_envelope(speech.audio, len(out.frames), out.fps)) >= 0.5
    assert pearson(after, original_envelope) < 0.3
    if drive == "phonemes":
        picks = np.linspace(0, len(out.frames) - 1, 8).astype(int)
        contact_sheet(
            [
                [face_crop(speaker.frames[shown[i]]) for i in picks],
                [face_crop(out.frames[i]) for i in picks],
            ],
            artifacts_dir(tmp_path) / "lipsync-contact-sheet.png",
        )


def test_a_kokoro_dub_drives_the_mouth_through_stretched_espeak_timings(
    syncer: LandmarkLipSyncer, landmarker: FaceLandmarker, speaker: VideoClip, settings: Settings
) -> None:
    kokoro = build_voice("kokoro:pf_dora", voice_context(settings))
    audio = kokoro.synthesize(TRANSLATED, "pt")
    speech = speech_for(kokoro, TRANSLATED, audio, "pt")
    assert len(speech.phonemes) >= 10
    assert speech.phonemes[-1].end_s <= audio.duration_s + 0.02
    out = syncer.sync(speaker, speech)
    after = openings(landmarker, out.frames)
    assert pearson(after, rms_envelope(speech.audio, len(out.frames), out.fps)) >= 0.5


def test_output_lasts_as_long_as_the_speech(syncer: LandmarkLipSyncer, speaker: VideoClip) -> None:
    for seconds, fps in ((0.52, 25.0), (4.4, 25.0), (2.0, 15.0)):
        clip = VideoClip(speaker.frames[:40], fps)
        speech = Speech(Audio(np.zeros(round(seconds * 48000), np.float32), 48000))
        out = syncer.sync(clip, speech)
        assert len(out.frames) == round(seconds * fps) == frame_count(seconds, fps)
        assert out.fps == fps
        assert all(f.shape == speaker.frames[0].shape for f in out.frames)
        assert out.frames[-1] is clip.frames[-1] or out.frames[-1].shape == clip.frames[-1].shape


def test_still_photo_animates(
    syncer: LandmarkLipSyncer, landmarker: FaceLandmarker, face_dir: Path, translated: Speech
) -> None:
    image = cv2.imread(str(face_dir / "grid_swwp2s_frame.png"))
    assert image is not None
    photo = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    out = syncer.sync(VideoClip([np.asarray(photo, np.uint8)], 25.0), translated)
    assert len(out.frames) == frame_count(translated.audio.duration_s, 25.0)
    measured = openings(landmarker, out.frames)
    assert not np.isnan(measured).any()
    assert np.nanmax(measured) - np.nanmin(measured) > 0.15  # in eye distances
    assert pearson(measured, rms_envelope(translated.audio, len(out.frames), 25.0)) >= 0.5


# --- frames without exactly one frontal face pass through ------------------------------------


def test_frames_without_a_face_are_returned_bit_identical(
    syncer: LandmarkLipSyncer, speaker: VideoClip
) -> None:
    face = speaker.frames[30]
    background = np.full_like(face, face[5, 5])
    cut = face.copy()
    cut[:, 60:300] = face[5, 5]  # the face cropped out: background where it was
    noise = np.random.default_rng(0).integers(0, 256, face.shape, dtype=np.uint8)
    faceless = [np.zeros_like(face), noise, cut, background]
    frames = speaker.frames[20:30] + faceless + speaker.frames[30:36]
    speech = Speech(Audio(np.sin(np.arange(len(frames) * 640) / 9).astype(np.float32), 16000))
    passed = counted("passthrough")

    out = syncer.sync(VideoClip(frames, 25.0), speech)

    assert len(out.frames) == len(frames)  # 1:1, so output i shows source i
    for i in range(10, 14):
        assert np.array_equal(out.frames[i], frames[i])
    assert not any(np.array_equal(out.frames[i], frames[i]) for i in (2, 5, 15, 18))
    assert counted("passthrough") - passed == 4


def test_two_faces_side_by_side_pass_through(
    syncer: LandmarkLipSyncer, speaker: VideoClip, face_dir: Path
) -> None:
    other = read_clip(face_dir / "grid_bbaf2n.mpg")
    frames = [
        np.hstack([a, b]) for a, b in zip(speaker.frames[:12], other.frames[:12], strict=True)
    ]
    speech = Speech(Audio(np.sin(np.arange(12 * 640) / 9).astype(np.float32), 16000))
    out = syncer.sync(VideoClip(frames, 25.0), speech)
    assert len(out.frames) == 12
    assert all(np.array_equal(a, b) for a, b in zip(out.frames, frames, strict=True))


def test_a_face_turned_away_is_implausible(landmarker: FaceLandmarker, speaker: VideoClip) -> None:
    face = landmarker.single_face(grey(speaker.frames[10]))
    assert face is not None and plausible(face.points, face.box)
    turned = face.points.copy()
    turned[27:36, 0] = face.points[36:42, 0].min() - 5  # nose beyond the eye: yaw ≫ 45°
    assert not plausible(turned, face.box)
    upside_down = np.ascontiguousarray(speaker.frames[10][::-1])
    assert landmarker.single_face(grey(upside_down)) is None


# --- retiming ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("sources", "outputs"), [(75, 75), (75, 110), (75, 31), (40, 79)])
def test_retiming_is_monotonic_from_first_to_last(sources: int, outputs: int) -> None:
    shown = source_indices(sources, outputs)
    steps = np.diff(shown)
    assert len(shown) == outputs and shown[0] == 0 and shown[-1] == sources - 1
    assert steps.min() >= 0
    assert steps.max() <= int(np.ceil((sources - 1) / (outputs - 1)))


def test_short_clips_ping_pong_and_end_on_the_last_frame() -> None:
    shown = source_indices(8, 60)
    steps = np.diff(shown)
    assert shown[0] == 0 and shown[-1] == 7
    assert np.abs(steps).max() <= 1  # no jumps
    assert (steps < 0).any() and (steps > 0).any()  # forward and backward
    assert source_indices(1, 5) == [0] * 5
    assert source_indices(6, 1) == [5]
    assert source_indices(6, 0) == []


# --- drive and phoneme timings ----------------------------------------------------------------


def test_visemes_close_bilabials_and_open_vowels() -> None:
    assert openness("m") == openness("p") == openness("b") == 0.0
    assert openness("a") == 1.0 and openness("aɪ") == 1.0
    assert 0.0 < openness("s") < openness("e") < openness("a")  # type: ignore[operator]
    assert openness("ˈ") is None and openness("") == 0.0


def test_drive_uses_phonemes_when_given_else_loudness() -> None:
    tone = Audio(np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3, 16000)
    timed = (PhonemeTiming("m", 0.0, 0.5), PhonemeTiming("a", 0.5, 1.0))
    track = mouth_track(Speech(tone, timed), 25.0)
    assert len(track) == 25 and track[:8].max() < 0.1 and track[15:21].min() > 0.9
    assert energy_track(tone, 25, 25.0).min() > 0.9  # steady tone: open throughout
    silent = Audio(np.zeros(16000, np.float32), 16000)
    assert not energy_track(silent, 25, 25.0).any()


def test_espeak_phoneme_timings_fit_the_tts_audio(portuguese: EspeakSynthesizer) -> None:
    heard = portuguese.synthesize(TRANSLATED, "pt")  # the espeak-ng command
    timed = espeak_speech(TRANSLATED, "pt-br")  # the library, with phoneme events
    frames = frame_count(timed.audio.duration_s, 100.0)
    assert heard.duration_s >= timed.audio.duration_s  # the command adds trailing silence
    assert not heard.samples[len(timed.audio.samples) + 100 :].any()
    same_speech = pearson(
        rms_envelope(heard, frames, 100.0), rms_envelope(timed.audio, frames, 100.0)
    )
    assert same_speech > 0.98
    phonemes = timed.phonemes
    assert len(phonemes) > 20 and phonemes[-1].end_s == pytest.approx(timed.audio.duration_s)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(phonemes))
    assert {"a", "o", "k"} <= {p.phoneme for p in phonemes}
    again = espeak_speech(TRANSLATED, "pt-br").phonemes
    starts = np.array([p.start_s for p in phonemes]) - np.array([p.start_s for p in again])
    assert np.abs(starts).max() < 0.002


@pytest.mark.parametrize(
    "voice",
    sorted(
        {
            spec[7:]
            for specs in DEFAULT_VOICES.values()
            for spec in specs
            if spec.startswith("espeak:")
        }
    ),
)
def test_every_default_espeak_voice_gives_timings(voice: str) -> None:
    heard = EspeakSynthesizer(voice).synthesize("Un, deux, trois.", "xx")
    phonemes = espeak_phonemes("Un, deux, trois.", voice)
    assert len(phonemes) >= 5
    assert 0.3 < phonemes[-1].end_s <= heard.duration_s


@dataclass
class _Alignment:
    phoneme: str
    num_samples: int


@dataclass
class _Chunk:
    sample_rate: int
    audio_float_array: npt.NDArray[np.float32]
    phoneme_alignments: list[_Alignment] | None


def test_piper_alignments_become_timings_across_sentences() -> None:
    first = _Chunk(100, np.zeros(50, np.float32), [_Alignment("h", 20), _Alignment("a", 30)])
    second = _Chunk(100, np.zeros(40, np.float32), [_Alignment("p", 40)])
    timed = piper_phonemes([first, second])
    assert [(p.phoneme, p.start_s, p.end_s) for p in timed] == [
        ("h", 0.0, 0.2),
        ("a", 0.2, 0.5),
        ("p", 0.5, 0.9),
    ]
    assert piper_phonemes([_Chunk(100, np.zeros(5, np.float32), None)]) == ()


def test_piper_voice_alignments_time_its_own_audio() -> None:
    from piper import PiperVoice

    from pipeline.tts.piper_voice import shipped_english_voice

    voice = PiperVoice.load(str(shipped_english_voice()), include_alignments=True)
    chunks = list(voice.synthesize("Place blue at F two now. Please.", include_alignments=True))
    timed = piper_phonemes(chunks)
    total = sum(len(c.audio_float_array) for c in chunks) / chunks[0].sample_rate
    assert len(chunks) == 2 and len(timed) > 20
    assert timed[-1].end_s == pytest.approx(total)
    assert [p.phoneme for p in timed[:4]] == ["^", "p", "l", "ˈ"]


# --- the neural backend and configuration -----------------------------------------------------


def tiny_model(folder: Path, size: int = 32) -> Path:
    """A stand-in for Wav2Lip: paints the whole crop grey, brighter the louder the mel window."""
    from onnx import TensorProto, helper, save

    face = helper.make_tensor_value_info("face", TensorProto.FLOAT, ["n", 6, size, size])
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["n", 1, 80, 16])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, size, size])
    constants = [
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("four", TensorProto.FLOAT, [], [4.0]),
        helper.make_tensor("eighth", TensorProto.FLOAT, [], [0.125]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [3]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [6]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("mean_axes", TensorProto.INT64, [3], [1, 2, 3]),
    ]
    nodes = [
        helper.make_node("Slice", ["face", "starts", "ends", "axes"], ["reference"]),
        helper.make_node("Mul", ["reference", "zero"], ["blank"]),
        helper.make_node("ReduceMean", ["audio", "mean_axes"], ["loudness"], keepdims=1),
        helper.make_node("Add", ["loudness", "four"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "eighth"], ["level"]),
        helper.make_node("Add", ["blank", "level"], ["out"]),
    ]
    graph = helper.make_graph(nodes, "tiny-lipsync", [face, audio], [out], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    save(model, str(folder / "tiny.onnx"))
    config = {"model": "tiny.onnx", "face_size": size, "face_input": "face", "batch": 4}
    (folder / "lipsync.json").write_text(json.dumps(config))
    return folder


def test_neural_backend_runs_an_onnx_model_on_each_face(
    tmp_path: Path, speaker: VideoClip, translated: Speech
) -> None:
    folder = tiny_model(tmp_path)
    settings = Settings(lipsync_backend="neural", lipsync_model_dir=folder)
    syncer = build_lipsyncer(settings)
    assert isinstance(syncer, NeuralLipSyncer)
    assert "CPUExecutionProvider" in syncer.providers

    frames = [*speaker.frames[:30], np.zeros_like(speaker.frames[0]), *speaker.frames[30:]]
    clip = VideoClip(frames, 25.0)
    out = syncer.sync(clip, translated)

    assert len(out.frames) == frame_count(translated.audio.duration_s, 25.0)
    shown = source_indices(len(frames), len(out.frames))
    blank = [k for k, i in enumerate(shown) if i == 30]
    assert blank and all(np.array_equal(out.frames[k], frames[30]) for k in blank)
    centre = np.array([f[150:160, 170:190].mean() for f in out.frames])  # inside the crop
    windows = frame_windows(log_mel(translated.audio), len(out.frames), 25.0, 16)
    fed = (windows.mean(axis=(1, 2, 3)) + 4) / 8 * 255  # what the tiny model paints
    keep = [k for k in range(len(out.frames)) if k not in blank]
    assert pearson(centre[keep], fed[keep].astype(np.float64)) > 0.98
    assert np.array_equal(out.frames[5][:, :40], frames[shown[5]][:, :40])  # outside the crop


def test_settings_refuse_neural_without_a_usable_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DRAGOMAN_LIPSYNC_MODEL_DIR"):
        Settings(lipsync_backend="neural")
    with pytest.raises(ValidationError, match="does not exist"):
        Settings(lipsync_backend="neural", lipsync_model_dir=tmp_path / "missing")
    with pytest.raises(ValidationError, match=r"no lipsync\.json"):
        Settings(lipsync_backend="neural", lipsync_model_dir=tmp_path)
    (tmp_path / "lipsync.json").write_text('{"model": "absent.onnx"}')
    with pytest.raises(ValidationError, match=r"absent\.onnx"):
        Settings(lipsync_backend="neural", lipsync_model_dir=tmp_path)
    (tmp_path / "lipsync.json").write_text("{not json")
    with pytest.raises(ValidationError, match="not JSON"):
        Settings(lipsync_backend="neural", lipsync_model_dir=tmp_path)
    assert Settings().lipsync_backend == "landmarks" and Settings().lipsync


def test_factory_maps_every_backend_name() -> None:
    assert set(LIPSYNC_BACKENDS) == {"landmarks", "neural"}
    assert isinstance(build_lipsyncer(Settings()), LandmarkLipSyncer)


def test_bench_reports_ms_per_640x480_frame(face_dir: Path) -> None:
    threads = cv2.getNumThreads()
    try:
        figures = bench_frames([face_dir / "grid_bbaf2n.mpg"], lambda _: None)
    finally:
        cv2.setNumThreads(threads)
    assert figures["frames"] == 75 and figures["frame_size"] == "640x480"
    assert 0 < figures["ms_per_frame_median"] < 60  # target ≤ 12 ms; loose on a busy machine
    assert figures["fps_equivalent"] == pytest.approx(1000 / figures["ms_per_frame_median"], 0.05)
