"""Audio I/O: decoding several real formats, resampling, sanitising, WAV round trips, errors."""

from __future__ import annotations

import csv
import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.audio import (
    ASR_SAMPLE_RATE,
    Audio,
    Samples,
    read_file,
    read_wav_bytes,
    resample,
    sanitize,
    stream_file,
    write_wav,
)
from pipeline.errors import AudioInputError, DragomanError
from testkit.fixtures import Clip, clip_named
from testkit.signals import write_16k

JFK = "en_jfk_inaugural_1961"


# ---------------------------------------------------------------- helpers


def rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def best_lag(decoded: Samples, reference: Samples, max_lag: int = 1600) -> int:
    """Lag (samples) by which `decoded` trails `reference`, from an FFT cross-correlation."""
    n = len(decoded) + len(reference)
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size))
    xcorr = np.fft.irfft(spectrum, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xcorr[: max_lag + 1], xcorr[-max_lag:]])
    return int(lags[int(np.argmax(values))])


def aligned_correlation(decoded: Samples, reference: Samples) -> float:
    lag = best_lag(decoded, reference)
    a = decoded[lag:] if lag >= 0 else decoded
    b = reference if lag >= 0 else reference[-lag:]
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def encode_with_pyav(
    path: Path, codec: str, rate: int, layout: str, samples: Samples, frame_size: int
) -> None:
    """Encode 16 kHz mono `samples` at `rate` with `layout` (identical channels) using PyAV."""
    channels = 2 if layout == "stereo" else 1
    signal = resample(samples, ASR_SAMPLE_RATE, rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        packed_s16 = codec in ("flac", "pcm_s16le")
        stream.layout = layout
        stream.format = "s16" if packed_s16 else "flt"
        for start in range(0, len(signal), frame_size):
            piece = signal[start : start + frame_size]
            if packed_s16:
                pcm = (np.clip(piece, -1.0, 1.0) * 32767).astype(np.int16)
                data = np.repeat(pcm, channels).reshape(1, -1)  # packed: L R L R …
                frame = av.AudioFrame.from_ndarray(data, format="s16", layout=layout)
            else:
                data = np.repeat(piece, channels).reshape(1, -1).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(data, format="flt", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def wav_bytes(pcm: np.ndarray, rate: int, channels: int, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def jfk(clips: list[Clip]) -> Audio:
    return read_file(clip_named(clips, JFK).path)


# ---------------------------------------------------------------- decoding fixture WAVs


def test_read_file_decodes_every_fixture_wav_at_manifest_duration(fixtures_dir: Path) -> None:
    with (fixtures_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["file"].endswith(".wav")]
    wavs = [(fixtures_dir / r["file"], float(r["duration_s"])) for r in rows]
    assert len(wavs) >= 30
    wrong = []
    for path, duration_s in wavs:
        audio = read_file(path)
        assert audio.sample_rate == ASR_SAMPLE_RATE
        assert audio.samples.dtype == np.float32
        assert audio.samples.ndim == 1
        assert np.all(np.abs(audio.samples) <= 1.0)
        if abs(audio.duration_s - duration_s) > 0.05:
            wrong.append((path.name, audio.duration_s, duration_s))
    assert not wrong, f"durations differ from manifest: {wrong}"


def test_stream_file_yields_float32_chunks_equal_to_read_file(
    clips: list[Clip], jfk: Audio
) -> None:
    chunks = list(stream_file(clip_named(clips, JFK).path))
    assert len(chunks) > 10  # streamed in pieces, not one block
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    joined = np.concatenate(chunks)
    assert len(joined) == 176000  # 11.0 s at 16 kHz
    np.testing.assert_array_equal(joined, jfk.samples)
    assert rms(joined) == pytest.approx(0.1421, abs=0.002)


def test_read_file_to_other_rate(clips: list[Clip], jfk: Audio) -> None:
    audio = read_file(clip_named(clips, JFK).path, sample_rate=48000)
    assert audio.sample_rate == 48000
    assert abs(len(audio.samples) - 3 * len(jfk.samples)) <= 8
    assert rms(audio.samples) == pytest.approx(rms(jfk.samples), rel=0.02)


# ---------------------------------------------------------------- other formats


def test_flac_44k_stereo_decodes_to_16k_mono(tmp_path: Path, jfk: Audio) -> None:
    path = tmp_path / "jfk_stereo.flac"
    encode_with_pyav(path, "flac", 44100, "stereo", jfk.samples, frame_size=4096)
    with av.open(str(path)) as container:
        source = container.streams.audio[0]
        assert (source.rate, source.channels) == (44100, 2)
    decoded = read_file(path)
    assert decoded.sample_rate == ASR_SAMPLE_RATE
    assert decoded.samples.ndim == 1
    assert decoded.duration_s == pytest.approx(jfk.duration_s, abs=0.1)
    assert aligned_correlation(decoded.samples, jfk.samples) > 0.99


def test_stereo_downmix_keeps_level(tmp_path: Path, jfk: Audio) -> None:
    path = tmp_path / "jfk_stereo.flac"
    encode_with_pyav(path, "flac", 44100, "stereo", jfk.samples, frame_size=4096)
    decoded = read_file(path)
    assert rms(decoded.samples) == pytest.approx(rms(jfk.samples), rel=0.1)


def test_grid_video_audio_level_matches_its_wav(fixtures_dir: Path) -> None:
    video = read_file(fixtures_dir / "face" / "grid_bbaf2n.mpg")
    reference = read_file(fixtures_dir / "face" / "grid_bbaf2n.wav")
    assert rms(video.samples) == pytest.approx(rms(reference.samples), rel=0.1)


def test_ogg_opus_48k_decodes_to_16k_mono(tmp_path: Path, jfk: Audio) -> None:
    path = tmp_path / "jfk.ogg"
    encode_with_pyav(path, "libopus", 48000, "mono", jfk.samples, frame_size=960)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name in ("opus", "libopus")
    decoded = read_file(path)
    assert decoded.duration_s == pytest.approx(jfk.duration_s, abs=0.1)
    assert aligned_correlation(decoded.samples, jfk.samples) > 0.95
    assert rms(decoded.samples) == pytest.approx(rms(jfk.samples), rel=0.1)


def test_8k_wav_decodes_to_16k(tmp_path: Path, jfk: Audio) -> None:
    path = tmp_path / "jfk_8k.wav"
    write_wav(path, Audio(resample(jfk.samples, ASR_SAMPLE_RATE, 8000), 8000))
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 8000
    decoded = read_file(path)
    assert decoded.sample_rate == ASR_SAMPLE_RATE
    assert decoded.duration_s == pytest.approx(11.0, abs=0.05)
    assert aligned_correlation(decoded.samples, jfk.samples) > 0.95
    assert rms(decoded.samples) == pytest.approx(rms(jfk.samples), rel=0.1)


def test_grid_video_first_audio_stream_decodes(fixtures_dir: Path) -> None:
    path = fixtures_dir / "face" / "grid_bbaf2n.mpg"
    with av.open(str(path)) as container:
        assert container.streams.video  # a real video file, not just audio
    decoded = read_file(path)
    assert decoded.sample_rate == ASR_SAMPLE_RATE
    assert decoded.duration_s == pytest.approx(3.0, abs=0.1)
    reference = read_file(fixtures_dir / "face" / "grid_bbaf2n.wav").samples
    assert aligned_correlation(decoded.samples, reference) > 0.98


def test_float_wav_with_nan_and_overs_is_sanitized(tmp_path: Path) -> None:
    path = tmp_path / "dirty.wav"
    signal = np.tile(np.array([0.25, np.nan, 2.0, -np.inf, -3.0, np.inf], np.float32), 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_f32le", rate=ASR_SAMPLE_RATE)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(signal.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = ASR_SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    decoded = read_file(path).samples
    assert len(decoded) == len(signal)
    assert np.all(np.isfinite(decoded))
    assert decoded.max() == 1.0 and decoded.min() == -1.0
    np.testing.assert_array_equal(decoded[:6], np.array([0.25, 0, 1, 0, -1, 0], np.float32))


# ---------------------------------------------------------------- resample


def test_resample_22050_to_48000_length() -> None:
    for seconds in (1, 3):
        samples = np.zeros(22050 * seconds, np.float32)
        out = resample(samples, 22050, 48000)
        assert out.dtype == np.float32
        assert abs(len(out) - 48000 * seconds) <= 4


def test_resample_keeps_sine_frequency_and_level() -> None:
    t = np.arange(2 * 22050) / 22050
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for to_rate in (48000, 16000):
        out = resample(sine, 22050, to_rate)
        freqs = np.fft.rfftfreq(len(out), 1 / to_rate)
        peak = freqs[int(np.argmax(np.abs(np.fft.rfft(out))))]
        assert peak == pytest.approx(440.0, abs=1.0)
        middle = out[len(out) // 4 : 3 * len(out) // 4]
        assert rms(middle) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_resample_empty_and_same_rate() -> None:
    empty = resample(np.zeros(0, np.float32), 22050, 48000)
    assert empty.dtype == np.float32 and len(empty) == 0
    same = resample(np.array([0.1, -0.2], np.float64), 16000, 16000)
    assert same.dtype == np.float32
    np.testing.assert_allclose(same, [0.1, -0.2], rtol=1e-6)


def test_resample_short_input_is_not_dropped() -> None:
    short = np.full(64, 0.5, np.float32)
    assert abs(len(resample(short, 48000, 16000)) - 21) <= 2
    assert abs(len(resample(short[:10], 22050, 48000)) - 22) <= 2


# ---------------------------------------------------------------- sanitize


def test_sanitize_replaces_non_finite_and_clips() -> None:
    dirty = np.array([np.nan, np.inf, -np.inf, 2.0, -3.0, 0.5, -0.25, 1.0], dtype=np.float64)
    clean = sanitize(dirty)
    assert clean.dtype == np.float32
    np.testing.assert_array_equal(clean, np.array([0, 0, 0, 1, -1, 0.5, -0.25, 1], np.float32))
    assert np.isnan(dirty[0])  # the input is left alone


# ---------------------------------------------------------------- errors


def assert_audio_error(path: Path, *words: str) -> None:
    for read in (read_file, lambda p: list(stream_file(p))):
        with pytest.raises(AudioInputError) as info:
            read(path)
        message = str(info.value)
        assert isinstance(info.value, DragomanError)
        assert "\n" not in message
        for word in words:
            assert word in message, message


def test_missing_file_raises(tmp_path: Path) -> None:
    assert_audio_error(tmp_path / "nope.wav", "not found", "nope.wav")


def test_directory_raises(tmp_path: Path) -> None:
    assert_audio_error(tmp_path, "not a file")


def test_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "blank.wav"
    path.write_bytes(b"")
    assert_audio_error(path, "is empty", "blank.wav")


def test_garbage_bytes_raise(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_audio_error(path, "garbage.wav")


def test_png_image_raises(fixtures_dir: Path) -> None:
    png = fixtures_dir / "face" / "grid_bbaf2n_frame.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert_audio_error(png, "grid_bbaf2n_frame.png", "no audio")


def test_truncated_wav_raises_or_decodes_to_nothing(tmp_path: Path, clips: list[Clip]) -> None:
    whole = clip_named(clips, JFK).path.read_bytes()
    for size in (100, 44, 20):
        path = tmp_path / f"truncated_{size}.wav"
        path.write_bytes(whole[:size])
        try:
            audio = read_file(path)
        except AudioInputError as exc:
            assert path.name in str(exc)
            continue
        assert audio.samples.dtype == np.float32
        assert audio.duration_s < 0.01


# ---------------------------------------------------------------- WAV writing and bytes


def test_write_wav_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = np.clip(rng.standard_normal(16000) * 0.3, -1, 1).astype(np.float32)
    samples[:3] = [1.0, -1.0, 0.0]
    path = write_16k(tmp_path / "round.wav", samples)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.getnframes() == 16000
    back = read_file(path).samples
    assert len(back) == len(samples)
    assert np.max(np.abs(back - samples)) < 3 / 32768


def test_write_wav_other_rate_and_clipping(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    write_wav(path, Audio(np.array([2.0, -2.0, 0.5], np.float32), 48000))
    parsed = read_wav_bytes(path.read_bytes())
    assert parsed.sample_rate == 48000
    np.testing.assert_allclose(parsed.samples, [32767 / 32768, -32767 / 32768, 16383 / 32768])


def test_read_wav_bytes_stereo_averages_channels() -> None:
    left = np.array([16384, -16384, 32767, 0], np.int16)
    right = np.array([0, -16384, -32767, 8192], np.int16)
    data = wav_bytes(np.stack([left, right], axis=1).reshape(-1), 22050, channels=2)
    audio = read_wav_bytes(data)
    assert audio.sample_rate == 22050
    assert audio.samples.dtype == np.float32
    np.testing.assert_allclose(audio.samples, [0.25, -0.5, 0.0, 0.125])


def test_read_wav_bytes_rejects_8_bit() -> None:
    data = wav_bytes(np.full(100, 128, np.uint8), 8000, channels=1, width=1)
    with pytest.raises(AudioInputError, match="16-bit"):
        read_wav_bytes(data)
