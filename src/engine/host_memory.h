// The process's resident memory as Linux accounts it, for the load report: what a load added at
// its peak is the resident set's peak during the load minus the resident set just before it, so
// that the libraries, runtimes and data the process already held (the CUDA libraries alone keep
// about 150 MiB resident) are not charged to the load.
#pragma once

#include <cstdint>

namespace fp8llm {

struct ResidentMemory {
  uint64_t current = 0;  // VmRSS: resident now
  uint64_t peak = 0;     // VmHWM: the most resident so far (since the last reset_peak_resident)
};

// Reads /proc/self/status; where that is not there, the peak comes from getrusage and the current
// size is 0.
ResidentMemory resident_memory();

// Lowers the kernel's peak mark (VmHWM) to the current resident set, so that a later peak is the
// peak since this call (Linux 4.0+: "5" written to /proc/self/clear_refs). False where the kernel
// does not allow it; the peak is then the process's lifetime peak, which can only be higher.
bool reset_peak_resident();

}  // namespace fp8llm
