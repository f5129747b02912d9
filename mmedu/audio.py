"""Audio features: framing, short-time Fourier transform, mel filterbank, log-mel spectrogram.

The pipeline the data chapter derives step by step::

    waveform (…, T)
      → frames (…, n_frames, n_fft)       pad the ends, cut overlapping windows
                                          every hop_length samples
      → windowed frames                   multiply by a Hann window (less leakage)
      → STFT (…, n_fft//2 + 1, n_frames)  real FFT of each frame (complex)
      → power |X|²                        energy per frequency bin
      → mel (…, n_mels, n_frames)         triangular filters, equally spaced in mel
      → log(mel + eps)                    compresses the range, like loudness

:func:`stft` is written from tensor primitives (``unfold`` + ``torch.fft.rfft``) and is
tested against ``torch.stft``; :func:`mel_filterbank` uses the HTK mel scale
``m = 2595 log10(1 + f / 700)`` and is tested against a brute-force loop over the
triangle formula.  The settings of the embedded dataset are the module constants
``SAMPLE_RATE``, ``N_FFT``, ``HOP_LENGTH``, ``N_MELS`` and ``N_SAMPLES``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "N_MELS",
    "N_SAMPLES",
    "N_FRAMES",
    "hz_to_mel",
    "mel_to_hz",
    "frame",
    "stft",
    "power_spectrogram",
    "mel_filterbank",
    "log_mel_spectrogram",
    "fix_length",
]

#: Settings used for the embedded MMDigits audio (FSDD recordings are 8 kHz).
SAMPLE_RATE = 8000
N_FFT = 256  #: Frame (FFT) length in samples (32 ms windows).
HOP_LENGTH = 128  #: Step between frame starts in samples (a 16 ms hop, 50 % overlap).
N_MELS = 40  #: Number of mel bands.
N_SAMPLES = 8000  #: Every clip is cut or zero-padded to 1.0 s.
N_FRAMES = 1 + N_SAMPLES // HOP_LENGTH  #: 63 frames per clip with centred framing.


def hz_to_mel(f: float | torch.Tensor) -> float | torch.Tensor:
    """HTK mel scale: ``m = 2595 · log10(1 + f / 700)``. Accepts floats or tensors."""
    if isinstance(f, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_to_hz(m: float | torch.Tensor) -> float | torch.Tensor:
    """Inverse of :func:`hz_to_mel`: ``f = 700 · (10^(m / 2595) − 1)``."""
    if isinstance(m, torch.Tensor):
        return 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _waveform(x, name: str = "waveform") -> torch.Tensor:
    x = as_tensor(x, name, floating=True)
    check_ndim(x, name, (1, 2), "(T,) or (B, T)")
    check_finite(x, name)
    return x


def frame(waveform: torch.Tensor | np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
          center: bool = True, pad_mode: str = "reflect") -> torch.Tensor:
    """Cut a waveform into overlapping frames.

    Args:
        waveform: ``(T,)`` or ``(B, T)`` real samples.
        n_fft: frame length in samples.
        hop_length: step between frame starts.
        center: pad ``n_fft // 2`` samples on both ends (as ``torch.stft`` does) so
            frame ``t`` is centred on sample ``t · hop_length``.
        pad_mode: ``"reflect"`` or ``"constant"`` (zeros), used when ``center``.

    Returns:
        ``(n_frames, n_fft)`` or ``(B, n_frames, n_fft)`` with
        ``n_frames = 1 + (T_padded − n_fft) // hop_length``.
    """
    x = _waveform(waveform)
    n_fft = check_positive_int(n_fft, "n_fft", minimum=2)
    hop_length = check_positive_int(hop_length, "hop_length")
    check_choice(pad_mode, "pad_mode", ("reflect", "constant"))
    squeeze = x.ndim == 1
    if squeeze:
        x = x.unsqueeze(0)
    if center:
        pad = n_fft // 2
        if pad_mode == "reflect" and x.shape[-1] <= pad:
            raise ValueError(f"waveform: reflect padding needs more than {pad} samples, got {x.shape[-1]}")
        # F.pad's reflect mode wants a 3-D (B, C, T) input.
        x = torch.nn.functional.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)
    if x.shape[-1] < n_fft:
        raise ValueError(f"waveform: expected at least n_fft={n_fft} samples (after padding), got {x.shape[-1]}")
    frames = x.unfold(-1, n_fft, hop_length)  # (B, n_frames, n_fft), a view
    return frames[0] if squeeze else frames


def stft(waveform: torch.Tensor | np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
         window: torch.Tensor | None = None, center: bool = True, pad_mode: str = "reflect") -> torch.Tensor:
    """Short-time Fourier transform from primitives; equals ``torch.stft(..., return_complex=True)``.

    Args:
        waveform: ``(T,)`` or ``(B, T)``.
        window: ``(n_fft,)``; default a periodic Hann window ``torch.hann_window(n_fft)``.

    Returns:
        complex ``(n_fft // 2 + 1, n_frames)`` or ``(B, n_fft // 2 + 1, n_frames)``
        (frequency before time, the layout of ``torch.stft``).
    """
    frames = frame(waveform, n_fft, hop_length, center, pad_mode)
    if window is None:
        window = torch.hann_window(n_fft, dtype=frames.dtype, device=frames.device)
    window = as_tensor(window, "window", floating=True)
    if window.shape != (n_fft,):
        raise ValueError(f"window: expected shape ({n_fft},), got {tuple(window.shape)}")
    spec = torch.fft.rfft(frames * window.to(frames), dim=-1)  # (…, n_frames, n_freqs)
    return spec.transpose(-1, -2)


def power_spectrogram(waveform: torch.Tensor | np.ndarray, n_fft: int = N_FFT,
                      hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """``|STFT|²``: ``(…, n_fft // 2 + 1, n_frames)`` real."""
    return stft(waveform, n_fft, hop_length).abs().pow(2)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 0.0, f_max: float | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Triangular mel filters on the rFFT bins (HTK mel scale, no area normalisation).

    Filter ``m`` rises linearly from 0 at centre ``m − 1`` to 1 at centre ``m`` and falls
    back to 0 at centre ``m + 1``; the ``n_mels + 2`` centres are equally spaced in mel
    between ``f_min`` and ``f_max`` (default: Nyquist).

    Returns:
        ``(n_mels, n_fft // 2 + 1)``, so that ``mel = fb @ power``.
    """
    n_mels = check_positive_int(n_mels, "n_mels")
    n_fft = check_positive_int(n_fft, "n_fft", minimum=2)
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    nyquist = sample_rate / 2
    f_max = nyquist if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ValueError(f"expected 0 <= f_min < f_max <= {nyquist} (Nyquist), got f_min={f_min}, f_max={f_max}")
    n_freqs = n_fft // 2 + 1
    if n_mels + 2 > n_freqs + 1:
        raise ValueError(f"n_mels: {n_mels} filters cannot be resolved by {n_freqs} FFT bins; lower n_mels or raise n_fft")
    freqs = torch.linspace(0.0, nyquist, n_freqs, dtype=torch.float64)
    mel_points = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    centres = mel_to_hz(mel_points)  # (n_mels + 2,)
    lower, centre, upper = centres[:-2, None], centres[1:-1, None], centres[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    fb = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return fb.to(dtype)


def log_mel_spectrogram(waveform: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE,
                        n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, n_mels: int = N_MELS,
                        eps: float = 1e-6) -> torch.Tensor:
    """``log(mel_filterbank @ |STFT|² + eps)``.

    Args:
        waveform: ``(T,)`` or ``(B, T)``, samples in [−1, 1].
        eps: floor inside the log (silence maps to ``log(eps)`` ≈ −13.8 instead of −inf).

    Returns:
        ``(n_mels, n_frames)`` or ``(B, n_mels, n_frames)``, natural log.
    """
    if not eps > 0:
        raise ValueError(f"eps: expected a positive float, got {eps}")
    power = power_spectrogram(waveform, n_fft, hop_length)
    fb = mel_filterbank(n_mels, n_fft, sample_rate, dtype=power.dtype).to(power.device)
    return torch.log(fb @ power + eps)


def fix_length(waveform: torch.Tensor | np.ndarray, n_samples: int = N_SAMPLES) -> torch.Tensor:
    """Cut or zero-pad the last axis to exactly ``n_samples``: ``(…, T) → (…, n_samples)``."""
    x = _waveform(waveform)
    n_samples = check_positive_int(n_samples, "n_samples")
    if x.shape[-1] >= n_samples:
        return x[..., :n_samples]
    return torch.nn.functional.pad(x, (0, n_samples - x.shape[-1]))
