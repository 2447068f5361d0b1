import io
import os
import pickle
import stat
import sys

import numpy as np
import pytest
import soundfile

from mms import audio
from mms.audio import SAMPLE_RATE, AudioError, audio_info, load_audio, write_audio


def sine(frequency, seconds, rate, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples))
    return np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)]


def test_stereo_44k_wav_becomes_16k_mono_with_same_pitch(tmp_path):
    left = sine(440, 1.0, 44100)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / "tone.wav"
    soundfile.write(path, stereo, 44100, subtype="FLOAT")

    samples = load_audio(path)

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert samples.flags.c_contiguous
    assert abs(len(samples) - SAMPLE_RATE) <= 1
    assert abs(peak_frequency(samples, SAMPLE_RATE) - 440) <= 2
    assert abs(np.abs(samples).max() - 0.5) < 0.02


def test_channels_are_averaged(tmp_path):
    stereo = np.stack([np.full(1600, 0.5), np.full(1600, -0.1)], axis=1).astype(np.float32)
    path = tmp_path / "two.wav"
    soundfile.write(path, stereo, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), 0.2, atol=1e-6)


def test_other_target_rate(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, sine(440, 0.5, SAMPLE_RATE), SAMPLE_RATE)
    samples = load_audio(path, sample_rate=8000)
    assert abs(len(samples) - 4000) <= 1
    assert abs(peak_frequency(samples, 8000) - 440) <= 3


@pytest.mark.parametrize("suffix, subtype", [(".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_flac_and_ogg_round_trip(tmp_path, suffix, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, sine(440, 1.0, 22050), 22050, subtype=subtype)
    samples = load_audio(path)
    assert abs(len(samples) - SAMPLE_RATE) <= 2
    assert abs(peak_frequency(samples, SAMPLE_RATE) - 440) <= 2


def test_non_audio_file_names_path_and_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    path = tmp_path / "bad.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: cannot decode audio (soundfile: ")
    assert "Format not recognised" in message
    assert message.endswith(")")  # a broken .wav: installing ffmpeg would not help, so no such hint
    assert isinstance(caught.value, ValueError)
    other = tmp_path / "talk.m4a"  # a format libsndfile does not read: ffmpeg would
    other.write_text("this is not audio either")
    with pytest.raises(AudioError, match="install ffmpeg to read other formats$"):
        load_audio(other)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="no such file") as caught:
        load_audio(tmp_path / "missing.wav")
    assert str(tmp_path / "missing.wav") in str(caught.value)
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)
    (tmp_path / "zero.wav").write_bytes(b"")  # a failed download or copy: said as such, not "install ffmpeg"
    with pytest.raises(AudioError, match=r"zero.wav: empty file \(0 bytes\)$"):
        load_audio(tmp_path / "zero.wav")


def test_empty_wav(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"empty audio \(0 samples\)"):
        load_audio(path)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_nan_or_inf_wav(tmp_path, bad_value):
    samples = np.zeros(1600, dtype=np.float32)
    samples[100] = bad_value
    path = tmp_path / "bad_values.wav"
    soundfile.write(path, samples, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="audio contains NaN or infinite samples"):
        load_audio(path)


def write_fake_ffmpeg(directory, body):
    """An executable named ffmpeg that runs `body` as Python with sys.argv."""
    script = directory / "ffmpeg"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_ffmpeg_fallback_decodes_f32le(tmp_path, monkeypatch):
    args_file = tmp_path / "args.txt"
    fake = write_fake_ffmpeg(
        tmp_path,
        f"open({str(args_file)!r}, 'w').write('\\n'.join(sys.argv[1:]))\n"
        "import struct\n"
        "sys.stdout.buffer.write(struct.pack('<3f', 0.25, -0.5, 1.0))",
    )
    monkeypatch.setattr(audio.shutil, "which", lambda name: str(fake))
    path = tmp_path / "speech.m4a"
    path.write_bytes(b"not something libsndfile reads")

    samples = load_audio(path, sample_rate=8000)

    np.testing.assert_array_equal(samples, np.array([0.25, -0.5, 1.0], dtype=np.float32))
    assert samples.dtype == np.float32
    assert args_file.read_text().split("\n") == [
        "-nostdin", "-v", "error", "-i", f"file:{path}",
        "-f", "f32le", "-ac", "1", "-ar", "8000", "-",
    ]


def test_ffmpeg_failure_is_reported(tmp_path, monkeypatch):
    fake = write_fake_ffmpeg(
        tmp_path, "sys.stderr.write('Invalid data found when processing input\\n'); sys.exit(1)"
    )
    monkeypatch.setattr(audio.shutil, "which", lambda name: str(fake))
    path = tmp_path / "junk.bin"
    path.write_bytes(b"junk")
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot decode audio (soundfile: ")
    assert "ffmpeg: Invalid data found when processing input" in message


def test_audio_error_pickles():
    error = pickle.loads(pickle.dumps(AudioError("a.wav", "no such file")))
    assert str(error) == "a.wav: no such file"
    assert (error.path, error.reason) == ("a.wav", "no such file")


def test_audio_info(tmp_path):
    path = tmp_path / "half.flac"
    soundfile.write(path, np.zeros(11025, dtype=np.float32), 22050)
    assert audio_info(path) == pytest.approx(0.5)
    junk = tmp_path / "junk.wav"
    junk.write_text("no")
    assert audio_info(junk) is None
    assert audio_info(tmp_path / "missing.wav") is None


def test_write_audio_wav_pcm_clips(tmp_path):
    path = tmp_path / "out" / "clip.wav"
    write_audio(path, np.array([0.5, 2.0, -3.0, np.nan], dtype=np.float32), 16000)
    data, rate = soundfile.read(path, dtype="float32")
    info = soundfile.info(path)
    assert (rate, info.format, info.subtype) == (16000, "WAV", "PCM_16")
    np.testing.assert_allclose(data, [0.5, 1.0, -1.0, 0.0], atol=1e-4)
    assert os.listdir(path.parent) == ["clip.wav"]


def test_write_audio_float_and_flac(tmp_path):
    samples = np.array([0.1, 1.5, -0.25], dtype=np.float32)
    write_audio(tmp_path / "f.wav", samples, 16000, subtype="FLOAT")
    data, _ = soundfile.read(tmp_path / "f.wav", dtype="float32")
    np.testing.assert_array_equal(data, samples)  # FLOAT is not clipped

    write_audio(tmp_path / "x.audio", samples, 22050, fmt="flac")
    info = soundfile.info(tmp_path / "x.audio")
    assert (info.format, info.samplerate, info.frames) == ("FLAC", 22050, 3)


def test_write_audio_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="use .wav or .flac"):
        write_audio(tmp_path / "x.mp3", np.zeros(3), 16000)
    assert list(tmp_path.iterdir()) == []


def test_write_audio_to_stdout(monkeypatch):
    fake_stdout = io.TextIOWrapper(io.BytesIO())
    monkeypatch.setattr(sys, "stdout", fake_stdout)
    write_audio("-", np.zeros(160, dtype=np.float32), 16000)
    data, rate = soundfile.read(io.BytesIO(fake_stdout.buffer.getvalue()))
    assert rate == 16000
    assert len(data) == 160


def test_long_stereo_48k_is_decoded_in_blocks_with_the_same_samples(tmp_path, monkeypatch):
    import tracemalloc

    import soxr

    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((48000 * 60 + 77, 2))).astype(np.float32)
    path = tmp_path / "long.wav"
    soundfile.write(path, stereo, 48000, subtype="FLOAT")
    monkeypatch.setattr(audio, "DECODE_BLOCK", 1 << 14)  # (a block is small against the file, as in a long one)
    tracemalloc.start()
    wave = load_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # what decoding the whole file first gave: the channels averaged, then resampled in one call
    whole = soxr.resample(stereo.mean(axis=1), 48000, 16000, quality="HQ")
    assert wave.dtype == np.float32 and wave.flags.c_contiguous
    np.testing.assert_array_equal(wave, whole)
    # the result and one block, not the file's stereo float32 at 48 kHz (6x the result) and its copies
    assert peak < 1.5 * wave.nbytes, (peak, wave.nbytes)
    np.testing.assert_array_equal(load_audio(path, channel=0), soxr.resample(stereo[:, 0], 48000, 16000, quality="HQ"))
    streamed = np.concatenate(list(audio.stream_audio(str(path), 40000)))
    np.testing.assert_array_equal(streamed, whole)


def test_standardize_is_float64_exact_on_loud_audio_without_copies():
    import tracemalloc

    rng = np.random.default_rng(1)
    wave = rng.standard_normal(16000 * 120).astype(np.float32)
    tracemalloc.start()
    out = audio.standardize(wave, 1e-7)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.3 * wave.nbytes  # the result alone (the old formula held three temporaries)
    expected = (wave.astype(np.float64) - wave.mean(dtype=np.float64)) / np.sqrt(wave.var(dtype=np.float64) + 1e-7)
    assert out.dtype == np.float32 and np.abs(out - expected).max() < 1e-5
    loud = audio.standardize(wave * np.float32(1e25), 1e-7)  # float32 squares overflow at ~1e19
    assert np.isfinite(loud).all() and abs(float(loud.std()) - 1) < 1e-3


def test_a_damaged_mp3_is_not_called_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    path = tmp_path / "song.mp3"
    path.write_bytes(b"\xff\xfb\x90\x00" + bytes(range(256)) * 40)
    with pytest.raises(AudioError) as error:
        load_audio(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "cannot decode audio" in message, message
    assert "does not exist" not in message


def test_a_cut_off_wav_is_read_with_a_warning_naming_it(tmp_path, caplog):
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, sine(440, 2.0, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:32044])  # the header and 1 s of its 2 s
    streamed = tmp_path / "streamed.wav"  # a streaming header: its data size is 0xFFFFFFFF, "until the end"
    data = bytearray(whole.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"
    streamed.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="mms.audio"):
        assert load_audio(whole).size == 32000 and load_audio(streamed).size == 32000
        assert not caplog.records
        assert load_audio(cut).size == 16000
        list(audio.stream_audio(str(cut), 4000))  # (read again: warned once)
    assert [r.getMessage() for r in caplog.records] == [
        f"{cut}: the file is cut off: its header promises 2.0 s of audio, it holds 1.0 s (read as it is)"]


def test_a_flac_with_garbage_inside_keeps_what_decodes_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)  # (no ffmpeg to try)
    wave = sine(300, 60.0, 16000, amplitude=0.3)
    whole = tmp_path / "whole.flac"
    soundfile.write(whole, wave, 16000)
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200] = bytes(b ^ 0x5A for b in data[middle:middle + 200])
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    kept = load_audio(damaged)
    streamed = np.concatenate(list(audio.stream_audio(str(damaged), 16000)))
    assert 25 * 16000 < kept.size < 35 * 16000 and abs(streamed.size - kept.size) <= 4096  # up to the damage


def test_a_damaged_flac_keeps_what_decodes_with_a_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)  # (no ffmpeg to try)
    """libsndfile fails a whole read that meets damaged FLAC data: the frames before the damage are read again in
    small steps and kept, as for a cut-off WAV (the whole recording was lost)."""
    wave = sine(300, 10.0, 16000, amplitude=0.3) + np.float32(0.05) * np.random.default_rng(0).standard_normal(
        160000).astype(np.float32)
    whole = tmp_path / "whole.flac"
    soundfile.write(whole, wave, 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="mms.audio"):
        kept = load_audio(cut)
        streamed = np.concatenate(list(audio.stream_audio(str(cut), 16000)))
    assert 3 * 16000 < kept.size < 160000 and np.array_equal(kept, load_audio(whole)[:kept.size])
    n = min(streamed.size, kept.size)  # (read in other blocks: the damage is found within 4096 frames)
    assert np.array_equal(streamed[:n], kept[:n]) and abs(streamed.size - kept.size) <= 4096
    assert [r.getMessage() for r in caplog.records] == [
        f"{cut}: damaged after {kept.size / 16000:.1f} s (Error : flac decoder lost sync): read up to there"]


@pytest.mark.parametrize("suffix", [".wav", ".ogg", ".flac"])
def test_a_pipe_or_standard_input_is_read_once_in_any_format(tmp_path, monkeypatch, suffix):
    """`<(cat a.ogg)`, a FIFO, `-`: copied once to a temporary file and decoded from there (a stream cannot be
    sought in: OGG and FLAC failed), which serves a second read (--lang auto reads an input for LID, then ASR)."""
    import threading

    monkeypatch.setattr(audio, "_SPOOLED", {})
    path = tmp_path / f"a{suffix}"
    soundfile.write(path, sine(440, 1.5, 16000), 16000)
    expected = load_audio(path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(path.read_bytes()), daemon=True)
    writer.start()
    assert audio_info(fifo) == pytest.approx(1.5)  # (reads the pipe once, for every later use)
    assert np.array_equal(load_audio(fifo), expected) and np.array_equal(load_audio(fifo), expected)
    assert np.array_equal(np.concatenate(list(audio.stream_audio(str(fifo), 8000))), expected)
    writer.join(5)
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": io.BytesIO(path.read_bytes())})())
    assert np.array_equal(load_audio("-"), expected) and np.array_equal(load_audio("-"), expected)


def test_audio_warnings_carry_the_commands_name(tmp_path):
    """Every message of a command starts with its name (`mms asr: ...`), the audio layer's warnings too."""
    import subprocess
    import sys

    whole = tmp_path / "whole.wav"
    soundfile.write(whole, sine(440, 2.0, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:32044])
    done = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", "eng", str(cut)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"mms asr: warning: {cut}: the file is cut off" in done.stderr, done.stderr


def test_channels_in_opposite_phase_are_not_averaged_into_silence(tmp_path, caplog):
    voice = sine(300, 1.0, SAMPLE_RATE).astype(np.float32)
    path = tmp_path / "inverted.wav"
    soundfile.write(path, np.stack([voice, -voice], axis=1), SAMPLE_RATE, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="mms.audio"):
        wave = load_audio(path)
        load_audio(path)
    np.testing.assert_array_equal(wave, voice)  # the first channel, not zeros
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: its channels cancel out when averaged (one is in opposite phase): reading the first channel"]
    same = tmp_path / "same.wav"  # ordinary stereo is still averaged, without a word
    soundfile.write(same, np.stack([voice, 0.5 * voice], axis=1), SAMPLE_RATE, subtype="FLOAT")
    caplog.clear()
    with caplog.at_level("WARNING", logger="mms.audio"):
        np.testing.assert_allclose(load_audio(same), 0.75 * voice, atol=1e-7)
    assert not caplog.records


def test_each_command_names_its_own_audio_warnings_in_one_process(tmp_path):
    """Two commands run by main() in one process (a notebook): each warning carries the command that read the file,
    and a library call afterwards prints it bare."""
    import subprocess
    import sys

    whole = tmp_path / "whole.wav"
    soundfile.write(whole, sine(440, 2.0, 16000), 16000, subtype="PCM_16")
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.wav").write_bytes(whole.read_bytes()[:32044])
    code = (f"from mms.cli import main\nfrom mms.audio import load_audio\n"
            f"main(['asr', '--model', 'demo', '--lang', 'eng', {str(tmp_path / 'a.wav')!r}])\n"
            f"main(['lid', '--model', 'demo', {str(tmp_path / 'b.wav')!r}])\n"
            f"load_audio({str(tmp_path / 'c.wav')!r})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line for line in done.stderr.splitlines() if "cut off" in line]
    assert [line.split(": the file")[0] for line in lines] == [
        f"mms asr: warning: {tmp_path / 'a.wav'}", f"mms lid: warning: {tmp_path / 'b.wav'}", str(tmp_path / "c.wav")]


def test_an_inverted_noisy_recording_is_read_from_one_channel_throughout(tmp_path):
    """Decided once per file (not block by block, which would switch between the average and one channel), and
    with independent noise in each channel (20 dB below the speech), which keeps the average from cancelling fully."""
    rng = np.random.default_rng(0)
    voice = np.tile(sine(300, 1.0, SAMPLE_RATE), 40)  # 40 s: several decoding blocks
    noise = rng.normal(0, 0.1 * float(np.std(voice)), (voice.size, 2))
    path = tmp_path / "inverted-noisy.wav"
    soundfile.write(path, (np.stack([voice, -voice], axis=1) + noise).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    wave = load_audio(path)
    np.testing.assert_allclose(wave, (voice + noise[:, 0]).astype(np.float32), atol=1e-6)


def test_integer_arrays_are_scaled_as_soundfile_reads_them(tmp_path):
    """An int16 array (as a wav file holds it) is the same waveform as soundfile's float reading of that file
    (cast without scaling it was 32768 times too loud); a non-numeric array is refused, naming the input."""
    from mms.audio import array_waveform

    samples = (np.sin(np.arange(1600) / 5) * 20000).astype(np.int16)
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(array_waveform(samples, "x"), soundfile.read(tmp_path / "a.wav", dtype="float32")[0])
    np.testing.assert_array_equal(array_waveform(np.array([0, 128, 255], np.uint8), "x"), [-1, 0, 127 / 128])
    with pytest.raises(AudioError, match="<array 3>: expected a waveform of float or integer samples"):
        array_waveform(np.array(["a"]), "<array 3>")
