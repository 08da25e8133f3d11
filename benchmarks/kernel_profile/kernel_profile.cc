// A per-kernel time table for GPU hosts without Nsight Systems: a CUDA injection library
// (CUDA_INJECTION64_PATH=.../libkernel_profile.so) that records every kernel and memcpy through
// CUPTI's Activity API and writes ProfileSummary's table when the process exits.
//   LOCKSTEP_KERNEL_PROFILE=FILE    where the table goes (default stderr; ".rank<N>" is appended
//                                   when Open MPI runs more than one rank)
//   LOCKSTEP_KERNEL_PROFILE_SKIP_MS=X  leave out what starts in the first X ms after the first kernel
#include <cupti.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <unistd.h>

#include "benchmarks/kernel_profile/profile_summary.h"

namespace lockstep {
namespace {

constexpr std::size_t kBufferBytes = 8u << 20;
constexpr std::size_t kBufferAlign = 8;  // CUPTI's requirement for activity buffers

// The driver calls InitializeInjection with nothing to hand on, and CUPTI calls back into plain
// functions, so the state is one process-wide object. It is never freed: CUPTI may deliver a
// buffer after static destructors ran (when the CUDA runtime tears down its contexts).
struct Profiler {
  std::mutex mutex;  // the buffer-completed callback runs on CUPTI's own thread
  ProfileSummary summary;
  bool recording = false;  // cleared once the report is out; later buffers are just freed
  bool iterate_error_reported = false;
};

Profiler& profiler() {
  static Profiler* p = new Profiler;
  return *p;
}

// One line on stderr and false on failure: the profiled program must carry on regardless.
bool cupti_ok(CUptiResult result, const char* call) {
  if (result == CUPTI_SUCCESS) return true;
  const char* what = "unknown error";
  cuptiGetResultString(result, &what);
  std::fprintf(stderr, "kernel_profile: %s failed: %s; kernel profiling is off for pid %d\n", call, what,
               static_cast<int>(getpid()));
  return false;
}

CopyKind copy_kind(std::uint8_t cupti_kind) {
  switch (cupti_kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return CopyKind::HtoD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return CopyKind::DtoH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return CopyKind::DtoD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return CopyKind::HtoH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return CopyKind::PtoP;
    default: return CopyKind::Other;  // arrays, unknown
  }
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  // A null buffer is allowed: CUPTI then drops records and counts them, which the report shows.
  *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(kBufferAlign, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext context, std::uint32_t stream_id, std::uint8_t* buffer, std::size_t,
                               std::size_t valid_bytes) {
  Profiler& p = profiler();
  {
    std::lock_guard lock(p.mutex);
    CUpti_Activity* record = nullptr;
    while (p.recording && buffer) {
      const CUptiResult r = cuptiActivityGetNextRecord(buffer, valid_bytes, &record);
      if (r == CUPTI_ERROR_MAX_LIMIT_REACHED || r == CUPTI_ERROR_INVALID_KIND) break;  // end; incomplete tail
      if (r != CUPTI_SUCCESS) {
        if (!p.iterate_error_reported) cupti_ok(r, "cuptiActivityGetNextRecord");
        p.iterate_error_reported = true;
        p.recording = false;
        break;
      }
      if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        p.summary.add_kernel(k->start, k->end, k->name);
      } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        p.summary.add_copy(m->start, m->end, m->bytes, copy_kind(m->copyKind));
      }
    }
    std::size_t dropped = 0;
    if (p.recording && cuptiActivityGetNumDroppedRecords(context, stream_id, &dropped) == CUPTI_SUCCESS)
      p.summary.add_dropped(dropped);
  }
  std::free(buffer);
}

// "lockstep pid 4242 rank 1" and FILE.rank1 when Open MPI started several ranks.
std::string process_label() {
  std::string label = std::string(program_invocation_short_name) + " pid " + std::to_string(getpid());
  if (const char* rank = std::getenv("OMPI_COMM_WORLD_RANK")) label += std::string(" rank ") + rank;
  return label;
}

std::string report_path() {
  const char* base = std::getenv("LOCKSTEP_KERNEL_PROFILE");
  if (base == nullptr || *base == '\0') return {};
  std::string path = base;
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (rank && (size == nullptr || std::atoi(size) > 1)) path += std::string(".rank") + rank;
  return path;
}

double skip_ms() {
  const char* text = std::getenv("LOCKSTEP_KERNEL_PROFILE_SKIP_MS");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= 0)) {
    std::fprintf(stderr, "kernel_profile: LOCKSTEP_KERNEL_PROFILE_SKIP_MS=%s is not a number of ms; skipping nothing\n",
                 text);
    return 0;
  }
  return v;
}

void write_report() {
  // Forced: buffers holding a kernel still in flight come back too (their records say so).
  if (!cupti_ok(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll"))
    std::fprintf(stderr, "kernel_profile: writing what was delivered before the failure\n");
  Profiler& p = profiler();
  std::string text;
  {
    std::lock_guard lock(p.mutex);
    p.recording = false;
    // Nothing ran on the GPU here (mpirun, say): writing would overwrite the rank's table when
    // both were given the same LOCKSTEP_KERNEL_PROFILE.
    if (p.summary.empty()) return;
    text = p.summary.report(process_label(), skip_ms());
  }
  const std::string path = report_path();
  std::FILE* out = path.empty() ? stderr : std::fopen(path.c_str(), "w");
  if (out == nullptr) {
    std::fprintf(stderr, "kernel_profile: cannot write %s (%s); the table follows on stderr\n", path.c_str(),
                 std::strerror(errno));
    out = stderr;
  }
  std::fputs(text.c_str(), out);
  if (out != stderr) std::fclose(out);
}

bool start() {
  // Activity records are laid out as the headers compiled here say; another major CUPTI
  // version may lay them out differently, so refuse rather than misread them.
  std::uint32_t version = 0;
  if (!cupti_ok(cuptiGetVersion(&version), "cuptiGetVersion")) return false;
  if (version / 10000 != CUPTI_API_VERSION / 10000) {
    std::fprintf(stderr,
                 "kernel_profile: built against CUPTI %d but libcupti reports %u; rebuild against the host's "
                 "toolkit; kernel profiling is off\n",
                 CUPTI_API_VERSION, version);
    return false;
  }
  if (!cupti_ok(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks"))
    return false;
  // Concurrent-kernel records do not serialize kernels (CUPTI_ACTIVITY_KIND_KERNEL would).
  if (!cupti_ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)"))
    return false;
  if (!cupti_ok(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "cuptiActivityEnable(MEMCPY)")) {
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    return false;
  }
  {
    std::lock_guard lock(profiler().mutex);
    profiler().recording = true;
  }
  if (std::atexit(write_report) != 0) {
    std::fprintf(stderr, "kernel_profile: atexit failed; kernel profiling is off\n");
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY);
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    std::lock_guard lock(profiler().mutex);
    profiler().recording = false;
    return false;
  }
  return true;
}

}  // namespace
}  // namespace lockstep

// The CUDA driver looks this symbol up in the CUDA_INJECTION64_PATH library and calls it once,
// inside cuInit. It returns 1 (what NVIDIA's injection samples return) even when profiling could
// not start, so that a profiling problem never becomes the profiled program's problem.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  static std::once_flag once;
  std::call_once(once, [] { lockstep::start(); });
  return 1;
}
