#pragma once
/// @file
/// Flushing subnormal (denormal) numbers to zero, as torch.set_flush_denormal does.
///
/// Arithmetic on subnormals is slow on x86 (a microcode assist per operation). Training
/// meets them: Adam's first moment of a weight whose gradient has become 0 shrinks by
/// beta1 = 0.9 each step and is subnormal in float after about 800 steps, from then on every
/// update of it is slow (train_mlp's later epochs took 1.3x the time; bench/README.md);
/// nn::Adam now stores such moments as 0 itself, and this mode remains for the rest.
/// Flushing changes results only where a value would have been below the smallest normal
/// number (1.2e-38 in float); it is the program's choice, so tapegrad never sets it itself.
/// It applies to the calling thread (the x86 MXCSR register's FTZ and DAZ bits).

namespace autodiff {

/// On: results below the smallest normal number become 0, and such inputs read as 0.
/// Returns false (and changes nothing) where the CPU offers no such mode.
bool set_flush_denormals(bool on);
/// Whether the calling thread flushes them.
bool flush_denormals();

}  // namespace autodiff
