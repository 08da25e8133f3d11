// The per-kernel time table that libkernel_profile.so writes at exit: kernel and memcpy records
// in, plain text out. Kept free of CUPTI so that it builds and is tested on machines without a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lockstep {

enum class CopyKind : std::uint8_t { HtoD, DtoH, DtoD, HtoH, PtoP, Other };

struct TimeInterval {
  std::uint64_t start_ns = 0, end_ns = 0;
};

// Time covered by at least one interval (overlaps count once), so that idle gaps between kernels
// and kernels running side by side on several streams both show in the busy fraction.
std::uint64_t covered_ns(std::vector<TimeInterval> intervals);

// "void ns::(anonymous namespace)::k<float, 4>(float const*, int)" -> "k<float, 4>": the return
// type, the enclosing namespaces/classes and the parameter list go, the template arguments stay.
std::string short_function_name(std::string_view demangled);

// The name a kernel is listed under: demangled (names that are not C++ symbols stay as they
// are), shortened as above, and cut to kMaxNameChars with a trailing "...".
inline constexpr std::size_t kMaxNameChars = 90;
std::string kernel_display_name(const char* mangled);

// Every record one process delivered; report() filters and aggregates at the end, so that the
// warm-up cut can refer to the first kernel, whenever its record arrives.
class ProfileSummary {
 public:
  void add_kernel(std::uint64_t start_ns, std::uint64_t end_ns, const char* mangled_name);
  void add_copy(std::uint64_t start_ns, std::uint64_t end_ns, std::uint64_t bytes, CopyKind kind);
  void add_dropped(std::uint64_t records) { dropped_ += records; }
  // No kernel and no copy delivered: e.g. mpirun itself, which loads the CUDA driver (and with it
  // this library) without running anything on the GPU. Such a process writes no report.
  bool empty() const { return kernels_.empty() && copies_.empty() && dropped_ == 0 && untimed_ == 0; }

  // One header line, the kernel table and the memcpy summary. The table's rows go by exclusive
  // time (how far a kernel's calls moved the end of the busy timeline: the real cost when kernels
  // overlap, as with dependent launch), with the plain kernel time beside it. skip_ms > 0 drops
  // every record that starts before the first kernel's start + skip_ms.
  std::string report(const std::string& process, double skip_ms) const;

 private:
  struct Kernel {
    std::uint64_t start_ns, end_ns;
    std::uint32_t name;  // index into names_
  };
  struct Copy {
    std::uint64_t start_ns, end_ns, bytes;
    CopyKind kind;
  };
  std::uint32_t name_id(const char* mangled_name);

  std::vector<Kernel> kernels_;
  std::vector<Copy> copies_;
  std::vector<std::string> names_;                             // distinct display names
  std::unordered_map<std::string, std::uint32_t> by_mangled_;  // demangle each symbol once
  std::unordered_map<std::string, std::uint32_t> by_display_;
  std::uint64_t dropped_ = 0;
  std::uint64_t untimed_ = 0;  // CUPTI's zero timestamps (no device memory to record them)
};

}  // namespace lockstep
