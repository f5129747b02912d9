import math

import pytest
import torch

from mmedu import audio


@pytest.mark.parametrize("n_fft,hop", [(256, 128), (64, 16), (255, 100)])
@pytest.mark.parametrize("center,pad_mode", [(True, "reflect"), (True, "constant"), (False, "reflect")])
def test_stft_matches_torch_stft(n_fft, hop, center, pad_mode):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2000, generator=g, dtype=torch.float64)
    ours = audio.stft(x, n_fft, hop, center=center, pad_mode=pad_mode)
    ref = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=center,
                     pad_mode=pad_mode, return_complex=True)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_stft_single_waveform_and_custom_window():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    win = torch.hamming_window(128)
    ref = torch.stft(x, 128, 32, window=win, return_complex=True)
    torch.testing.assert_close(audio.stft(x, 128, 32, window=win), ref, rtol=1e-4, atol=1e-4)


def test_frame_positions():
    x = torch.arange(20.0)
    f = audio.frame(x, n_fft=4, hop_length=3, center=False)
    assert f.shape == (6, 4)
    torch.testing.assert_close(f[2], torch.tensor([6.0, 7.0, 8.0, 9.0]))


def test_mel_scale_round_trip_and_anchor():
    assert audio.hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    f = torch.linspace(0, 4000, 50, dtype=torch.float64)
    torch.testing.assert_close(audio.mel_to_hz(audio.hz_to_mel(f)), f)


def test_mel_filterbank_against_brute_force_loop():
    n_mels, n_fft, sr = 10, 64, 8000
    fb = audio.mel_filterbank(n_mels, n_fft, sr, dtype=torch.float64)
    n_freqs = n_fft // 2 + 1
    mels = [audio.hz_to_mel(0.0) + i * (audio.hz_to_mel(sr / 2) - audio.hz_to_mel(0.0)) / (n_mels + 1)
            for i in range(n_mels + 2)]
    hz = [audio.mel_to_hz(m) for m in mels]
    for m in range(n_mels):
        for k in range(n_freqs):
            f = k * sr / n_fft
            lo, c, hi = hz[m], hz[m + 1], hz[m + 2]
            if lo <= f <= c:
                want = (f - lo) / (c - lo)
            elif c < f <= hi:
                want = (hi - f) / (hi - c)
            else:
                want = 0.0
            assert fb[m, k].item() == pytest.approx(want, abs=1e-9), (m, k)


def test_mel_filterbank_partition_of_unity_between_outer_centres():
    fb = audio.mel_filterbank(20, 512, 8000, dtype=torch.float64)
    freqs = torch.linspace(0, 4000, 257, dtype=torch.float64)
    centres = audio.mel_to_hz(torch.linspace(0, audio.hz_to_mel(4000.0), 22, dtype=torch.float64))
    inside = (freqs >= centres[1]) & (freqs <= centres[-2])
    torch.testing.assert_close(fb.sum(0)[inside], torch.ones(int(inside.sum()), dtype=torch.float64))


def test_pure_tone_lands_in_the_right_mel_band():
    sr, f0 = 8000, 1000.0
    t = torch.arange(sr, dtype=torch.float64) / sr
    lm = audio.log_mel_spectrogram(torch.sin(2 * math.pi * f0 * t))
    band = lm.mean(-1).argmax().item()
    fb = audio.mel_filterbank(dtype=torch.float64)
    bin_f0 = round(f0 * audio.N_FFT / sr)
    assert fb[band, bin_f0] == fb[:, bin_f0].max()


def test_log_mel_shape_and_parseval_energy():
    x = torch.randn(2, audio.N_SAMPLES, generator=torch.Generator().manual_seed(3))
    lm = audio.log_mel_spectrogram(x)
    assert lm.shape == (2, audio.N_MELS, audio.N_FRAMES)
    # Parseval per frame: sum |rfft|^2 (with the one-sided doubling) == n_fft * sum of windowed samples^2.
    frames = audio.frame(x[0], center=False)
    win = torch.hann_window(audio.N_FFT)
    spec = audio.stft(x[0], center=False)
    w = torch.ones(spec.shape[0])
    w[1:-1] = 2.0
    lhs = (spec.abs() ** 2 * w[:, None]).sum(0)
    rhs = audio.N_FFT * ((frames * win) ** 2).sum(-1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-3)


def test_fix_length_cuts_and_pads():
    assert audio.fix_length(torch.ones(10), 4).tolist() == [1.0] * 4
    assert audio.fix_length(torch.ones(2, 3), 5)[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("call,err,match", [
    (lambda: audio.stft(torch.zeros(2, 3, 400)), ValueError, "1-D or 2-D"),
    (lambda: audio.stft(torch.tensor([1.0, float("nan")] * 300)), ValueError, "finite"),
    (lambda: audio.stft(torch.zeros(100), n_fft=256), ValueError, "reflect padding"),
    (lambda: audio.stft(torch.zeros(100), n_fft=256, center=False), ValueError, "at least n_fft"),
    (lambda: audio.stft(torch.zeros(1000), window=torch.ones(10)), ValueError, r"window: expected shape \(256,\)"),
    (lambda: audio.stft("not audio"), TypeError, "waveform"),
    (lambda: audio.frame(torch.zeros(1000), hop_length=0), ValueError, "hop_length"),
    (lambda: audio.frame(torch.zeros(1000), pad_mode="wrap"), ValueError, "pad_mode"),
    (lambda: audio.mel_filterbank(n_mels=200, n_fft=64), ValueError, "n_mels"),
    (lambda: audio.mel_filterbank(f_min=5000.0), ValueError, "f_min"),
    (lambda: audio.log_mel_spectrogram(torch.zeros(1000), eps=0.0), ValueError, "eps"),
    (lambda: audio.frame(torch.zeros(1000), n_fft=2.5), TypeError, "n_fft"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_runs_on_input_dtype_and_device():
    x = torch.randn(2, 4000, dtype=torch.float64)
    out = audio.log_mel_spectrogram(x)
    assert out.dtype == torch.float64 and out.device == x.device
