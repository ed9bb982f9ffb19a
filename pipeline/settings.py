"""All of Dragoman's settings in one place (environment variables prefixed DRAGOMAN_)."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.assets import default_assets_dir
from pipeline.lipsync.model_dir import load_model_config


class IceServer(BaseModel):
    """One STUN or TURN server as RTCIceServer takes it."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "dragoman"


class Settings(BaseSettings):
    """Settings for every stage. A bad value stops start-up with a clear message."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_", env_nested_delimiter="__")

    cache_dir: Path = Field(default_factory=_default_cache_dir)
    inference_threads: int = Field(2, ge=1, le=64, description="threads for model inference")

    # VAD and segmentation
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    vad_min_silence_ms: int = Field(300, ge=32, le=5000, description="pause that ends a segment")
    vad_speech_pad_ms: int = Field(160, ge=0, le=1000)
    vad_min_speech_ms: int = Field(250, ge=32, le=5000)
    segment_max_s: float = Field(
        12.0, ge=2.0, le=30.0, description="longest segment; cut at the quietest point"
    )

    # ASR
    asr_model: str = Field(
        "base", description="'base' (offline), 'tiny.en' (offline), a faster-whisper name or folder"
    )
    asr_device: Literal["cpu", "cuda", "auto"] = "cpu"
    asr_compute_type: str = "int8"
    asr_beam_size: int = Field(1, ge=1, le=10)
    asr_no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    asr_logprob_threshold: float = Field(-1.0, le=0.0)
    asr_compression_ratio_threshold: float = Field(2.4, gt=1.0)
    asr_min_speech_ratio: float = Field(
        0.15, ge=0.0, le=1.0, description="VAD gate: share of speech frames"
    )
    live_captions: bool = Field(
        True, description="partial captions of the floor holder while they speak"
    )
    live_min_audio_s: float = Field(
        0.8, ge=0.2, le=10.0, description="speech before a segment's first partial decode"
    )
    live_min_step_s: float = Field(
        0.5, ge=0.1, le=10.0, description="new speech between two partial decodes, at least"
    )

    # MT
    mt_backends: list[str] = Field(default_factory=lambda: ["bergamot", "apertium"])
    apertium_modes_dir: Path = Path("/usr/share/apertium/modes")
    bergamot_model_dirs: list[Path] = Field(
        default_factory=list, description="extra Bergamot model folders"
    )
    ctranslate2_models: dict[str, str] = Field(
        default_factory=dict,
        description="'src-tgt' (or 'multi' for NLLB/M2M100) → CTranslate2 folder",
    )
    mt_timeout_s: float = Field(10.0, gt=0.0)

    # TTS
    tts_voices: dict[str, str] = Field(
        default_factory=dict,
        description="language → voice(s): 'kokoro:NAME', 'festival:VOICE', 'piper:PATH', "
        "'espeak:VOICE', comma-separated for several",
    )
    tts_sample_rate: int = Field(48000, description="output rate (48 kHz for WebRTC)")
    tts_device: Literal["cpu", "cuda"] = Field("cpu", description="where Kokoro runs")
    tts_fallback_lag_s: float = Field(
        4.0,
        ge=0.0,
        le=60.0,
        description="a dub this late (s after its speech ended) is spoken by the language's "
        "fast voice (espeak-ng, Piper for English): a machine short of CPU falls back on voice "
        "quality, not latency; 0 never",
    )
    tts_voice_mode: Literal["matched", "neutral"] = Field(
        "matched", description="matched: each speaker a voice near their own; neutral: defaults"
    )
    assets_dir: Path = Field(
        default_factory=default_assets_dir,
        description="voices and the speaker embedder that `make setup` installs",
    )

    # Gateway
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ice_servers: list[IceServer] = Field(
        default_factory=list, description="STUN/TURN servers for peers; empty: host candidates only"
    )
    loopback_only: bool = Field(False, description="offer and accept only 127.0.0.1 ICE candidates")
    max_participants_per_room: int = Field(50, ge=2, le=1000)
    max_rooms: int = Field(100, ge=1, le=100_000)
    floor_release_s: float = Field(
        1.5, gt=0.0, le=30.0, description="holder's silence that frees the floor"
    )
    queued_speech_max_s: float = Field(
        30.0, ge=0.0, le=300.0, description="speech held while queued"
    )
    playout_mode: Literal["live", "smooth"] = Field(
        "live", description="live: a short capped delay; smooth: a turn's dubs back to back"
    )
    playout_smooth_max_delay_s: float = Field(
        4.0, ge=0.0, le=30.0, description="upper bound of the delay D in smooth mode"
    )
    playout_max_delay_s: float = Field(
        0.5, ge=0.0, le=10.0, description="upper bound of the delay D"
    )
    original_under_translation: float = Field(
        0.0, ge=0.0, le=1.0, description="gain of the ducked original"
    )
    lipsync: bool = Field(
        True, description="lip-synced video by default (rooms and listeners may turn it off)"
    )
    lipsync_backend: Literal["landmarks", "neural"] = Field(
        "landmarks", description="landmarks: CPU mouth warp; neural: ONNX model (Wav2Lip class)"
    )
    lipsync_model_dir: Path | None = Field(
        None, description="neural lip-sync: folder with lipsync.json and its ONNX model"
    )
    lipsync_max_wait_s: float = Field(
        1.5, ge=0.0, le=10.0, description="a dub waits this long for its lip-synced video"
    )
    video_fps: int = Field(15, ge=1, le=30)
    video_width: int = Field(640, ge=64, le=1920)
    video_height: int = Field(480, ge=64, le=1080)
    translation_mode: Literal["turn_taking", "all_pairs"] = Field(
        "turn_taking",
        description="all_pairs: the naive baseline, a pipeline run per listener and speaker",
    )
    reconnect_grace_s: float = Field(30.0, ge=0.0, le=600.0, description="seat kept after a drop")
    connect_timeout_s: float = Field(
        20.0, gt=0.0, le=300.0, description="a peer not connected (ICE and DTLS) by then leaves"
    )
    pipeline_workers: int = Field(1, ge=1, le=16, description="utterances processed at once")
    bus_queue_size: int = Field(64, ge=1, le=10_000, description="jobs waiting or in flight")

    # Access control and limits
    open_rooms: bool = Field(
        False, description="development: anyone may join any room, without a token"
    )
    jwt_secret: SecretStr | None = Field(None, description="HS256 key that signs room tokens")
    max_body_bytes: int = Field(128 * 1024, ge=1024, le=16 * 1024 * 1024)
    joins_per_ip_per_minute: int = Field(30, ge=1, le=100_000)
    entries_per_ip_per_minute: int = Field(
        120, ge=1, le=100_000, description="room entry lookups per client address"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks whose X-Forwarded-For is believed; empty: none",
    )
    header_read_timeout_s: float = Field(
        10.0, gt=0.0, le=300.0, description="a request's headers must arrive within this"
    )

    # Scale-out: Redis Streams bus, workers, room directory, TURN
    redis_url: str | None = Field(
        None, description="redis://[:password@]host:port/db; unset: in-process workers"
    )
    gateway_id: str = Field(
        default_factory=lambda: f"gw-{uuid.uuid4().hex[:8]}",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="this gateway's name on the bus",
    )
    public_url: str | None = Field(
        None, description="where browsers reach this gateway (room directory redirects)"
    )
    bus_job_timeout_s: float = Field(
        30.0, gt=0.0, le=600.0, description="a job with no result by then fails"
    )
    drain_timeout_s: float = Field(
        20.0, gt=0.0, le=600.0, description="on SIGTERM, pending translations get this long"
    )
    bus_claim_idle_s: float = Field(
        10.0, gt=0.0, le=600.0, description="a job idle this long on a silent worker is reclaimed"
    )
    bus_stream_maxlen: int = Field(1000, ge=10, le=1_000_000, description="MAXLEN of each stream")
    bus_heartbeat_s: float = Field(1.0, gt=0.0, le=60.0)
    bus_max_deliveries: int = Field(3, ge=1, le=100, description="then a job fails as poison")
    worker_batch: int = Field(1, ge=1, le=64, description="ASR segments per model call")
    turn_urls: list[str] = Field(
        default_factory=list, description="turn:host:port URLs given to clients with credentials"
    )
    turn_secret: SecretStr | None = Field(None, description="coturn static-auth-secret")
    turn_ttl_s: int = Field(3600, ge=60, le=7 * 86400)

    @field_validator("tts_sample_rate")
    @classmethod
    def _webrtc_rate(cls, value: int) -> int:
        if value not in (8000, 16000, 24000, 48000):
            raise ValueError("must be one of 8000, 16000, 24000, 48000 (Opus rates)")
        return value

    @field_validator("mt_backends")
    @classmethod
    def _known_mt_backends(cls, value: list[str]) -> list[str]:
        known = {"bergamot", "apertium", "ctranslate2"}
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown MT backend(s) {unknown}; choose from {sorted(known)}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _streams_hold_every_queued_job(self) -> Settings:
        if self.bus_stream_maxlen < 4 * self.bus_queue_size:
            raise ValueError(
                "DRAGOMAN_BUS_STREAM_MAXLEN must be at least 4 × DRAGOMAN_BUS_QUEUE_SIZE, "
                "or queued jobs could be trimmed before a worker reads them"
            )
        return self

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Settings:
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("DRAGOMAN_TURN_URLS is set but DRAGOMAN_TURN_SECRET is not")
        return self

    @model_validator(mode="after")
    def _neural_lipsync_needs_model(self) -> Settings:
        if self.lipsync_backend == "neural":
            try:
                load_model_config(self.lipsync_model_dir)
            except ValueError as exc:
                raise ValueError(f"DRAGOMAN_LIPSYNC_BACKEND is 'neural' but {exc}") from None
        return self

    @model_validator(mode="after")
    def _ctranslate2_needs_models(self) -> Settings:
        if "ctranslate2" in self.mt_backends and not self.ctranslate2_models:
            raise ValueError(
                "DRAGOMAN_MT_BACKENDS includes 'ctranslate2' "
                "but DRAGOMAN_CTRANSLATE2_MODELS is empty"
            )
        return self
