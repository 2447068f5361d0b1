"""Reading and writing audio: float32 mono at 16 kHz, with clear errors.

soundfile (libsndfile) decodes wav, flac, ogg and mp3; anything else goes
through ffmpeg when it is installed. No torch here, so importing is cheap.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import shutil
import subprocess
import sys

from typing import Iterator

import numpy as np
import soundfile
import soxr

from mms.errors import MMSError
from mms.files import atomic_path, is_special

SAMPLE_RATE = 16000
log = logging.getLogger("mms.audio")

# load_audio decodes this many output samples at a time (16 s: 6 MB of 48 kHz stereo float32 read at once).
DECODE_BLOCK = 1 << 18

# write_audio: the soundfile container for each file suffix.
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class AudioError(MMSError):
    """An input that cannot be used as audio; str() is one line: "path: reason"."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}".replace("\n", " "))

    def __reduce__(self):
        # Custom __init__ arguments: without this the error cannot be
        # pickled back from a worker process.
        return (type(self), (self.path, self.reason))


def _soundfile_reason(error: Exception) -> str:
    """libsndfile's own reason ("Format not recognised"), without the path it repeats."""
    reason = getattr(error, "error_string", "") or str(error)
    return reason.strip().rstrip(".")


def _decode_with_ffmpeg(ffmpeg: str, path: str, sample_rate: int, soundfile_reason: str) -> np.ndarray:
    """Decode any format ffmpeg knows to float32 mono at `sample_rate`."""
    command = [
        ffmpeg, "-nostdin", "-v", "error",
        # "file:" so that a name like "a:b.wav" is not read as a protocol
        "-i", "file:" + readable(path),
        "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-",
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        messages = result.stderr.decode("utf-8", "replace").strip().splitlines()
        ffmpeg_reason = messages[-1] if messages else f"exit status {result.returncode}"
        raise AudioError(
            path,
            f"cannot decode audio (soundfile: {soundfile_reason}; ffmpeg: {ffmpeg_reason})",
        )
    usable_bytes = len(result.stdout) - len(result.stdout) % 4
    return np.frombuffer(result.stdout[:usable_bytes], dtype="<f4").astype(np.float32)


def array_waveform(array, name: str) -> np.ndarray:
    """An array input as the models read one: C-contiguous float32, 1-D (reshape(-1) would interleave or join a
    stereo array's channels), not empty, every sample finite; else an AudioError naming the input. Integer samples
    (int16 as read from a wav file) are scaled to [-1, 1) as soundfile reads them: cast as they were, they were
    32768 times too loud for the models that take audio unstandardised."""
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        middle = (info.max + 1) // 2 if array.dtype.kind == "u" else 0  # (unsigned: 8-bit wav's offset)
        array = (array.astype(np.float64) - middle) / (info.max + 1 - middle)
    elif array.dtype.kind != "f":
        raise AudioError(name, f"expected a waveform of float or integer samples, got an array of {array.dtype}")
    wave = np.ascontiguousarray(array, dtype=np.float32)
    if wave.ndim != 1:
        raise AudioError(name, f"expected a 1-D waveform at 16 kHz, got an array of shape {wave.shape}")
    if wave.size == 0 or not np.isfinite(wave).all():
        raise AudioError(name, "empty audio or NaN/infinite samples")
    return wave


_SPOOLED: dict[str, str] = {}  # a pipe -> the temporary file holding what it gave (removed at exit)


def readable(path: str) -> str:
    """Where to read `path` from: itself, or for a pipe (`<(cat a.ogg)`, a FIFO, /dev/stdin fed by a pipe) or
    standard input ("-"), a temporary file it was copied into the first time. A pipe can be read only once and
    not sought in (OGG and FLAC failed from one), and an input may be read twice (`mms asr --lang auto`: LID,
    then ASR); on disk, it costs no memory however long the stream."""
    import stat

    if path in _SPOOLED:
        return _SPOOLED[path]
    if path != "-":
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                return path
        except (OSError, ValueError):
            return path
    import atexit
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="mms-pipe-", delete=False) as spool:
        if not _SPOOLED:
            atexit.register(_remove_spooled)
        _SPOOLED[path] = spool.name
        if path == "-":
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        else:
            with open(path, "rb") as stream:
                shutil.copyfileobj(stream, spool, 1 << 20)
    return spool.name


def _remove_spooled() -> None:
    for spooled in _SPOOLED.values():
        if os.path.exists(spooled):
            os.unlink(spooled)


def native_path(path: str) -> str | bytes:
    """The name to give libsndfile: a name that is not UTF-8 on disk (Python holds its bytes as lone
    surrogates) goes as its bytes, which soundfile would otherwise fail to encode."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, channel: int | None = None) -> np.ndarray:
    """Read `path` as C-contiguous float32 1-D mono at `sample_rate`.

    Channels are averaged (or `channel` alone is kept, for files libsndfile reads); other rates are resampled
    with soxr (HQ). Decoded block by block into the result, so that memory is the mono waveform at
    `sample_rate`, not the file's channels at its own rate. Raises AudioError for a missing file, an
    undecodable file, empty audio and audio with NaN or infinite samples.
    """
    path = os.fspath(path)
    source = readable(path)
    if os.path.isdir(source):
        raise AudioError(path, "is a directory, not an audio file")
    if not os.path.exists(source):
        raise AudioError(path, "no such file")
    if os.path.isfile(source) and os.path.getsize(source) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        sound = soundfile.SoundFile(native_path(source))
    except (soundfile.SoundFileError, RuntimeError) as error:
        return _decode_elsewhere(path, sample_rate, _soundfile_reason(error))
    with sound:
        warn_if_cut_off(sound, path)
        expected = math.ceil(sound.frames * sample_rate / sound.samplerate) if sound.frames > 0 else 0
        samples, filled = np.empty(expected + 16, np.float32), 0
        try:
            for block in _decode_blocks(sound, path, sample_rate, DECODE_BLOCK, channel, source):
                if filled + block.size > samples.size:  # the header said less than the stream holds
                    samples = np.concatenate([samples[:filled], np.empty(max(block.size, samples.size), np.float32)])
                samples[filled:filled + block.size] = block
                filled += block.size
        except _UnreadableStream as error:
            if shutil.which("ffmpeg") or not filled:  # (ffmpeg may decode past a damaged frame)
                try:
                    return _decode_elsewhere(path, sample_rate, error.reason)
                except AudioError:
                    if not filled:
                        raise
            warn_damaged(path, filled / sample_rate, error.reason)
    if filled == 0:
        raise AudioError(path, f"audio too short to resample from {sound.samplerate} Hz")
    return samples[:filled]


_warned_cut_off: set[str] = set()


def warn_if_cut_off(sound: soundfile.SoundFile, path: str) -> None:
    """A warning naming a WAV file whose data ends before its header says (an interrupted copy or download):
    libsndfile reads what is there without a word. (Streaming headers, which state no length, are not cut off.)"""
    if sound.format not in ("WAV", "WAVEX"):
        return
    stated = re.search(r"^data : (\d+) \(should be (\d+)\)", sound.extra_info, re.MULTILINE)
    if stated is None:
        return
    declared, present = int(stated.group(1)), int(stated.group(2))
    if 0 < present < declared < 0xFFFFFF00 and path not in _warned_cut_off:
        _warned_cut_off.add(path)  # once a run: training reads its files again every epoch
        seconds = sound.frames / sound.samplerate
        promised = seconds * declared / present
        digits = 1 if f"{promised:.1f}" != f"{seconds:.1f}" else 4  # (a few bytes short: shown to the sample)
        log.warning(f"{path}: the file is cut off: its header promises {promised:.{digits}f} s "
                    f"of audio, it holds {seconds:.{digits}f} s (read as it is)")


def warn_damaged(path: str, seconds: float, reason: str) -> None:
    """A file whose data fails to decode part way (a FLAC cut off or damaged): what came before is kept, as for a
    WAV cut off, and said once a run."""
    if path not in _warned_cut_off:
        _warned_cut_off.add(path)
        log.warning(f"{path}: damaged after {seconds:.1f} s ({reason}): read up to there")


class _UnreadableStream(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _decode_blocks(sound: soundfile.SoundFile, path: str, sample_rate: int, block: int,
                   channel: int | None = None, source: str | None = None) -> Iterator[np.ndarray]:
    """An open file as consecutive float32 mono pieces at `sample_rate` (about `block` samples each; channels
    averaged or `channel` alone; resampled with soxr's streaming resampler, which gives the same samples as
    resampling the whole). _UnreadableStream when libsndfile fails on the data."""
    rate = sound.samplerate
    resampler = None if rate == sample_rate else soxr.ResampleStream(rate, sample_rate, 1, quality="HQ")
    step = max(1, math.ceil(block * rate / sample_rate))
    total, done, first_only = 0, False, None  # first_only: decided once per file, on its first audible block
    position, damaged = 0, None  # frames read; why the data stopped decoding, if it did
    while not done:
        try:
            data = sound.read(step, dtype="float32", always_2d=True)
            done = len(data) < step
        except (soundfile.SoundFileError, RuntimeError) as error:  # a corrupt stream past the header
            damaged, done = _soundfile_reason(error), True
            data = _read_up_to_damage(source or path, position, sound.channels)
            if not len(data):
                raise _UnreadableStream(damaged) from None
        position += len(data)
        if first_only is None and data.shape[1] > 1 and channel is None:
            first_only = _channels_cancel(data, path)
        if data.shape[1] == 1 or channel is not None or first_only:
            samples = np.ascontiguousarray(data[:, channel or 0])
        else:
            samples = data.mean(axis=1)
        # checked before resampling, which would smear one bad sample over many
        if not np.isfinite(samples).all():
            raise AudioError(path, "audio contains NaN or infinite samples")
        total += samples.size
        if resampler is not None:
            samples = resampler.resample_chunk(samples, last=done)
        yield samples
    if damaged:  # what came before the damage has been given: the caller keeps it and says so
        raise _UnreadableStream(damaged)
    if total == 0:
        raise AudioError(path, "empty audio (0 samples)")


def _read_up_to_damage(source: str, position: int, channels: int, step: int = 4096) -> np.ndarray:
    """The frames from `position` that still decode, read again in small steps after a big read failed on damaged
    data (a FLAC cut off or with garbage inside: libsndfile fails the whole read, not only its damaged part), from
    a fresh handle (the failed one cannot seek any more)."""
    parts = []
    try:
        with soundfile.SoundFile(native_path(source)) as sound:
            sound.seek(position)
            while len(part := sound.read(step, dtype="float32", always_2d=True)):
                parts.append(part)
    except (soundfile.SoundFileError, RuntimeError):
        pass
    return np.concatenate(parts) if parts else np.zeros((0, channels), np.float32)


CANCELLED = 0.05  # a downmix with less than this share of its channels' energy: channels in opposite phase (the
# average of two equally loud channels of correlation r keeps (1 + r) / 2 of their energy: 0.05 is r < -0.9)
_warned_cancelled: set[str] = set()


def _channels_cancel(data: np.ndarray, path: str) -> bool | None:
    """Whether averaging the channels of this block cancels them (one channel recorded or wired in opposite phase:
    the average is near silence while each channel is not), with a warning; None for a silent block (undecided).
    The caller decides once per file, so a file is never read partly averaged, partly from one channel."""
    energy = float(np.mean(np.square(data, dtype=np.float64)))
    if energy <= 1e-8:
        return None
    cancelled = float(np.mean(np.square(data.mean(axis=1), dtype=np.float64))) < CANCELLED * energy
    if cancelled and path not in _warned_cancelled:  # once a run: training reads its files again every epoch
        _warned_cancelled.add(path)
        log.warning(f"{path}: its channels cancel out when averaged (one is in opposite phase): reading the first "
                    f"channel")
    return cancelled


def _decode_elsewhere(path: str, sample_rate: int, reason: str) -> np.ndarray:
    """What libsndfile cannot read, through ffmpeg when it is installed; else an AudioError with its reason."""
    if reason.startswith("File does not exist or is not a regular file"):  # libsndfile's words for a bad mp3
        reason = "not an audio format it reads, or a damaged file"
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        # the install hint only where libsndfile does not know the format (not for a corrupt .flac)
        known = os.path.splitext(path)[1][1:].upper() in soundfile.available_formats()
        hint = "" if known else "; install ffmpeg to read other formats"
        raise AudioError(path, f"cannot decode audio (soundfile: {reason}){hint}")
    samples = _decode_with_ffmpeg(ffmpeg, path, sample_rate, reason)
    if samples.size == 0:
        raise AudioError(path, "empty audio (0 samples)")
    if not np.isfinite(samples).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    return samples


def standardize(wave: np.ndarray, eps: float) -> np.ndarray:
    """Zero mean, unit variance over the whole waveform, in float32: the per-utterance normalisation that
    wav2vec2 checkpoints with `normalize` expect (before any windowing, so every window sees the same scale).
    The statistics are summed in float64 a block at a time: no float32 overflow on loud samples, and no
    temporary copies of a long recording."""
    wave = np.asarray(wave, dtype=np.float32)
    mean = float(np.mean(wave, dtype=np.float64))
    block = 1 << 16
    squares = sum(float(np.square(wave[i:i + block].astype(np.float64) - mean).sum())
                  for i in range(0, wave.size, block))
    out = np.subtract(wave, np.float32(mean), dtype=np.float32)
    out /= np.float32(math.sqrt(squares / max(wave.size, 1) + eps))
    return out


def stream_audio(path: str, block: int) -> Iterator[np.ndarray]:
    """Consecutive `block`-sample pieces (the last one shorter) of an audio file as float32 mono at 16 kHz,
    decoded piece by piece so that memory does not grow with the file (the same samples as load_audio).
    Files libsndfile cannot open go through load_audio (ffmpeg, decoded whole), which also explains failures."""
    source = readable(path)
    try:
        sound = soundfile.SoundFile(native_path(source))
    except Exception:  # noqa: BLE001 - missing, a directory, or a container only ffmpeg reads
        wave = load_audio(path)
        for start in range(0, wave.size, block):
            yield wave[start:start + block]
        return
    with sound:
        warn_if_cut_off(sound, path)
        pending, decoded = np.zeros(0, np.float32), 0
        try:
            for samples in _decode_blocks(sound, path, SAMPLE_RATE, block, source=source):
                pending = np.concatenate([pending, samples])
                decoded += samples.size
                while pending.size >= block:
                    yield pending[:block]
                    pending = pending[block:]
        except _UnreadableStream as error:
            if not decoded:
                raise AudioError(path, f"cannot decode audio (soundfile: {error.reason})") from None
            warn_damaged(path, decoded / SAMPLE_RATE, error.reason)
        if pending.size:
            yield pending


def audio_info(path: str | os.PathLike) -> float | None:
    """Duration in seconds from the file header, without decoding.

    None when soundfile cannot tell (unknown format, unreadable or missing
    file); never raises. Meant for sorting inputs by length.
    """
    try:
        info = soundfile.info(native_path(readable(os.fspath(path))))
    except Exception:
        return None
    if info.samplerate <= 0 or info.frames < 0:
        return None
    return info.frames / info.samplerate


def write_audio(
    path: str | os.PathLike,
    samples: np.ndarray,
    sample_rate: int,
    fmt: str | None = None,
    subtype: str | None = None,
) -> None:
    """Write a wav or flac file atomically; "-" writes a wav to standard output.

    The format comes from `fmt` ("wav" or "flac") or else the suffix of
    `path`. `subtype` defaults to "PCM_16"; "FLOAT" gives 32-bit float wav.
    For PCM, samples are clipped to [-1, 1] and NaN becomes 0, because
    libsndfile would otherwise wrap loud samples around.
    """
    path = os.fspath(path)
    if fmt is not None:
        container = fmt.upper()
        if "." + fmt.lower() not in WRITE_FORMATS:
            raise ValueError(f"cannot write audio format {fmt!r}; use wav or flac")
    elif path == "-":
        container = "WAV"
    else:
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in WRITE_FORMATS:
            raise ValueError(
                f"{path}: cannot tell the audio format from the suffix; use .wav or .flac"
            )
        container = WRITE_FORMATS[suffix]
    subtype = subtype or "PCM_16"

    samples = np.asarray(samples, dtype=np.float32)
    if subtype.upper().startswith("PCM"):
        samples = np.clip(np.nan_to_num(samples), -1.0, 1.0)

    if path == "-" or is_special(path):
        # A wav header needs seeking, which a pipe cannot do: build it in memory.
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, sample_rate, format=container, subtype=subtype)
        if path != "-":  # a named pipe or device (`--wav >(...)`, /dev/null): written in place
            with open(path, "wb") as f:
                f.write(buffer.getvalue())
            return
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    with atomic_path(path) as temp_path:
        # The format is explicit because the temporary name ends in ".tmp".
        soundfile.write(temp_path, samples, sample_rate, format=container, subtype=subtype)
