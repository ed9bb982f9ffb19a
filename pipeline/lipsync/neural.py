"""The neural backend: a Wav2Lip/MuseTalk-class ONNX model from an operator-supplied folder.

Faces are found with the same tracker as the landmark backend; each synced frame's square face
crop and the speech's mel window at that frame go to the model in batches (onnxruntime, CUDA
when available), and its redrawn crop is pasted back with a feathered edge.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from pipeline.errors import ModelUnavailableError
from pipeline.lipsync.base import Frame, LipSyncer, Speech, VideoClip
from pipeline.lipsync.landmarks import Box, Face, FaceLandmarker
from pipeline.lipsync.melspec import frame_windows, log_mel
from pipeline.lipsync.model_dir import load_model_config
from pipeline.lipsync.plan import count_outcomes, plan
from pipeline.lipsync.tracking import FaceTracker
from pipeline.onnx_options import cpu_session_options

Tensor = npt.NDArray[np.float32]
_PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")
_FEATHER = 0.08  # σ of the paste mask's edge, as a share of the crop side


def providers() -> list[str]:
    """CUDA when this onnxruntime has it, always CPU."""
    available = set(ort.get_available_providers())
    return [name for name in _PREFERRED if name in available]


def square_crop(face: Face, padding: float, shape: tuple[int, ...]) -> Box:
    """A square around the face box, grown by `padding` per side, inside the frame."""
    left, top, right, bottom = face.box
    side = max(right - left, bottom - top) * (1 + 2 * padding)
    side = min(side, shape[0], shape[1])
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, shape[1] - side))
    y0 = int(np.clip(round(cy - side / 2), 0, shape[0] - side))
    return (x0, y0, x0 + int(side), y0 + int(side))


class NeuralLipSyncer(LipSyncer):
    """Runs the folder's model over every frame with one face; the rest pass through."""

    name = "neural"

    def __init__(
        self,
        folder: Path,
        threads: int = 2,
        landmarker: FaceLandmarker | None = None,
    ) -> None:
        try:
            self.config = load_model_config(folder)
        except ValueError as exc:
            raise ModelUnavailableError(f"neural lip-sync: {exc}") from None
        self._session = ort.InferenceSession(
            str(folder / self.config.model), cpu_session_options(threads), providers=providers()
        )
        self._output = self.config.output or self._session.get_outputs()[0].name
        self._landmarker = landmarker or FaceLandmarker()

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def sync(self, clip: VideoClip, speech: Speech) -> VideoClip:
        steps = plan(clip, speech, FaceTracker(self._landmarker))
        frames: list[Frame] = [clip.frames[i] for i in steps.indices]
        todo = [(k, face) for k, i in enumerate(steps.indices) if (face := steps.faces[i])]
        config = self.config
        mels = frame_windows(
            log_mel(speech.audio, config.mel_bins), len(frames), clip.fps, config.mel_steps
        )
        for first in range(0, len(todo), config.batch):
            batch = todo[first : first + config.batch]
            boxes = [square_crop(face, config.crop_padding, frames[k].shape) for k, face in batch]
            chosen = [k for k, _ in batch]
            drawn = self._run([frames[k] for k in chosen], boxes, mels[chosen])
            for k, box, crop in zip(chosen, boxes, drawn, strict=True):
                frames[k] = paste(frames[k], crop, box)
        count_outcomes(self.name, len(todo), len(frames) - len(todo))
        return VideoClip(frames, clip.fps)

    def _run(self, frames: list[Frame], boxes: list[Box], mels: Tensor) -> Tensor:
        """The model's crops (n × side × side × 3, RGB, 0–1) for these frames."""
        crops = np.stack([self._crop(frame, box) for frame, box in zip(frames, boxes, strict=True)])
        faces = face_input(crops, self.config.reference_face)
        result = self._session.run(
            [self._output], {self.config.face_input: faces, self.config.audio_input: mels}
        )[0]
        images = np.clip(np.asarray(result, dtype=np.float32), 0.0, 1.0).transpose(0, 2, 3, 1)
        return images[..., ::-1] if self.config.channels == "bgr" else images

    def _crop(self, frame: Frame, box: Box) -> Tensor:
        left, top, right, bottom = box
        size = self.config.face_size
        crop = cv2.resize(frame[top:bottom, left:right], (size, size), interpolation=cv2.INTER_AREA)
        pixels = crop.astype(np.float32) / 255.0
        return pixels[..., ::-1] if self.config.channels == "bgr" else pixels


def face_input(crops: Tensor, reference: bool) -> Tensor:
    """n × C × S × S: with `reference`, the crops with their lower half blanked (what the model
    must draw), then the crops themselves (who it draws); else the crops."""
    channels_first = crops.transpose(0, 3, 1, 2)
    if not reference:
        return np.ascontiguousarray(channels_first)
    masked = channels_first.copy()
    masked[:, :, crops.shape[1] // 2 :, :] = 0.0
    return np.ascontiguousarray(np.concatenate([masked, channels_first], axis=1))


def paste(frame: Frame, crop: Tensor, box: Box) -> Frame:
    """A copy of `frame` with `crop` (RGB, 0–1) resized into `box`, its edge feathered."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR) * 255.0
    mask = np.zeros((height, width), np.float32)
    inset = max(1, int(2 * _FEATHER * width))
    mask[inset:-inset, inset:-inset] = 1.0
    alpha = cv2.GaussianBlur(mask, (0, 0), max(_FEATHER * width, 0.5))[..., None]
    out = frame.copy()
    region = out[top:bottom, left:right].astype(np.float32)
    out[top:bottom, left:right] = np.clip(region + (resized - region) * alpha + 0.5, 0, 255).astype(
        np.uint8
    )
    return out
