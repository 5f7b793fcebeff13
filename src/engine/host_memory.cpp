#include "engine/host_memory.h"

#include <sys/resource.h>

#include <fstream>
#include <sstream>
#include <string>

namespace fp8llm {
namespace {

// "VmRSS:     13604 kB" -> 13604 * 1024.
bool read_kib_field(const std::string& line, const std::string& key, uint64_t& bytes) {
  if (!line.starts_with(key)) return false;
  std::istringstream in(line.substr(key.size()));
  uint64_t kib = 0;
  if (!(in >> kib)) return false;
  bytes = kib * 1024;
  return true;
}

}  // namespace

ResidentMemory resident_memory() {
  ResidentMemory m;
  bool have_peak = false;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    read_kib_field(line, "VmRSS:", m.current);
    have_peak = read_kib_field(line, "VmHWM:", m.peak) || have_peak;
  }
  if (!have_peak) {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0) m.peak = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  }
  return m;
}

bool reset_peak_resident() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}

}  // namespace fp8llm
