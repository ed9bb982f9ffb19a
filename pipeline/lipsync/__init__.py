"""Lip-sync: the speaker's video, its mouth driven by the translated speech.

Entry points (imported from their modules; this package stays light so that settings
validation can import `model_dir` without loading dlib or OpenCV):

- `factory.build_lipsyncer(settings) -> LipSyncer`: the configured backend, built once per
  process; `LipSyncer.sync(clip, speech) -> VideoClip` is blocking and thread-safe.
- `phonemes.speech_for(voice, text, audio, language) -> Speech`: TTS output with phoneme
  timings: an espeak-ng voice's own, else espeak-ng's stretched to the dub (`dub_phonemes`).
"""
