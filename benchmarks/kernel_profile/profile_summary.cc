// The kernel time table (see profile_summary.h).
#include "benchmarks/kernel_profile/profile_summary.h"

#include <cxxabi.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace lockstep {
namespace {

__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (n > 0) out.append(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) * 1e-6; }
double us(std::uint64_t ns) { return static_cast<double>(ns) * 1e-3; }

const char* copy_kind_name(CopyKind k) {
  switch (k) {
    case CopyKind::HtoD: return "HtoD";
    case CopyKind::DtoH: return "DtoH";
    case CopyKind::DtoD: return "DtoD";
    case CopyKind::HtoH: return "HtoH";
    case CopyKind::PtoP: return "PtoP";
    case CopyKind::Other: return "other";
  }
  return "other";
}

}  // namespace

std::uint64_t covered_ns(std::vector<TimeInterval> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const TimeInterval& a, const TimeInterval& b) { return a.start_ns < b.start_ns; });
  std::uint64_t total = 0, run_start = 0, run_end = 0;
  bool open = false;
  for (const TimeInterval& i : intervals) {
    if (i.end_ns <= i.start_ns) continue;
    if (open && i.start_ns <= run_end) {
      run_end = std::max(run_end, i.end_ns);
      continue;
    }
    if (open) total += run_end - run_start;
    run_start = i.start_ns;
    run_end = i.end_ns;
    open = true;
  }
  if (open) total += run_end - run_start;
  return total;
}

std::string short_function_name(std::string_view s) {
  // The parameter list is the bracket group that closes the name; scan it from the end so that
  // parentheses inside it (function pointer types) match up.
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (std::size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++depth;
      else if (s[i] == '(' && --depth == 0) {
        s = s.substr(0, i);
        break;
      }
    }
  }
  // The name starts after the last space (return type) or "::" (scope) outside any brackets:
  // "(anonymous namespace)" and template arguments hold both and must survive.
  std::size_t begin = 0;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<' || c == '(' || c == '[' || c == '{') ++depth;
    else if (c == '>' || c == ')' || c == ']' || c == '}') depth = std::max(0, depth - 1);
    else if (depth == 0 && c == ' ') begin = i + 1;
    else if (depth == 0 && c == ':' && i + 1 < s.size() && s[i + 1] == ':') begin = ++i + 1;
  }
  const std::string_view name = s.substr(std::min(begin, s.size()));
  return std::string(name.empty() ? s : name);
}

std::string kernel_display_name(const char* mangled) {
  if (mangled == nullptr || *mangled == '\0') return "(unnamed)";
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = short_function_name(status == 0 && demangled ? demangled : mangled);
  std::free(demangled);
  if (name.size() > kMaxNameChars) name = name.substr(0, kMaxNameChars - 3) + "...";
  return name;
}

std::uint32_t ProfileSummary::name_id(const char* mangled_name) {
  const std::string key = mangled_name ? mangled_name : "";
  if (auto it = by_mangled_.find(key); it != by_mangled_.end()) return it->second;
  // Different symbols can shorten to one name (overloads, namespaces): they share a row.
  std::string display = kernel_display_name(mangled_name);
  auto [it, inserted] = by_display_.try_emplace(display, static_cast<std::uint32_t>(names_.size()));
  if (inserted) names_.push_back(std::move(display));
  by_mangled_.emplace(key, it->second);
  return it->second;
}

void ProfileSummary::add_kernel(std::uint64_t start_ns, std::uint64_t end_ns, const char* mangled_name) {
  if (start_ns == 0 || end_ns < start_ns) {
    ++untimed_;
    return;
  }
  kernels_.push_back({start_ns, end_ns, name_id(mangled_name)});
}

void ProfileSummary::add_copy(std::uint64_t start_ns, std::uint64_t end_ns, std::uint64_t bytes, CopyKind kind) {
  if (start_ns == 0 || end_ns < start_ns) {
    ++untimed_;
    return;
  }
  copies_.push_back({start_ns, end_ns, bytes, kind});
}

std::string ProfileSummary::report(const std::string& process, double skip_ms) const {
  std::uint64_t first_start = std::numeric_limits<std::uint64_t>::max();
  for (const Kernel& k : kernels_) first_start = std::min(first_start, k.start_ns);
  std::uint64_t cutoff = 0;
  if (skip_ms > 0 && !kernels_.empty()) cutoff = first_start + static_cast<std::uint64_t>(std::llround(skip_ms * 1e6));

  struct Row {
    std::uint64_t total = 0, exclusive = 0, calls = 0, min = std::numeric_limits<std::uint64_t>::max(), max = 0;
    std::uint32_t name = 0;
  };
  std::vector<Row> rows(names_.size());
  std::vector<TimeInterval> busy;
  std::uint64_t kernel_ns = 0, span_start = std::numeric_limits<std::uint64_t>::max(), span_end = 0;
  std::uint64_t skipped_kernels = 0, skipped_copies = 0;
  // In start order, each kernel's exclusive time: how far it moves the end of the busy timeline
  // (end - max(start, the latest end so far)). With dependent launch a kernel starts early and
  // waits, so its duration overstates it; the exclusive times add up to the busy time.
  std::vector<const Kernel*> by_start;
  for (const Kernel& k : kernels_)
    if (k.start_ns >= cutoff) by_start.push_back(&k);
  std::stable_sort(by_start.begin(), by_start.end(),
                   [](const Kernel* a, const Kernel* b) { return a->start_ns < b->start_ns; });
  std::uint64_t frontier = 0;
  for (const Kernel* k : by_start) {
    const std::uint64_t from = std::max(k->start_ns, frontier);
    if (k->end_ns > from) rows[k->name].exclusive += k->end_ns - from;
    frontier = std::max(frontier, k->end_ns);
  }
  for (const Kernel& k : kernels_) {
    if (k.start_ns < cutoff) {
      ++skipped_kernels;
      continue;
    }
    const std::uint64_t d = k.end_ns - k.start_ns;
    Row& r = rows[k.name];
    r.total += d;
    ++r.calls;
    r.min = std::min(r.min, d);
    r.max = std::max(r.max, d);
    kernel_ns += d;
    span_start = std::min(span_start, k.start_ns);
    span_end = std::max(span_end, k.end_ns);
    busy.push_back({k.start_ns, k.end_ns});
  }
  const std::uint64_t kernels = busy.size();
  const std::uint64_t span = kernels ? span_end - span_start : 0;
  const std::uint64_t covered = covered_ns(std::move(busy));

  std::string out;
  appendf(out, "kernel_profile: %s: %llu kernels, GPU span %.3f ms, kernel time %.3f ms, busy %.3f", process.c_str(),
          static_cast<unsigned long long>(kernels), ms(span), ms(kernel_ns),
          span ? static_cast<double>(covered) / static_cast<double>(span) : 0.0);
  for (const Copy& c : copies_) skipped_copies += c.start_ns < cutoff;
  if (cutoff)
    appendf(out, "; skipped the first %g ms after the first kernel (%llu kernels, %llu copies)", skip_ms,
            static_cast<unsigned long long>(skipped_kernels), static_cast<unsigned long long>(skipped_copies));
  if (dropped_) appendf(out, "; %llu records DROPPED by CUPTI", static_cast<unsigned long long>(dropped_));
  if (untimed_) appendf(out, "; %llu records without timestamps", static_cast<unsigned long long>(untimed_));
  out += '\n';

  for (std::uint32_t i = 0; i < rows.size(); ++i) rows[i].name = i;
  std::erase_if(rows, [](const Row& r) { return r.calls == 0; });
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (a.exclusive != b.exclusive) return a.exclusive > b.exclusive;
    return a.total != b.total ? a.total > b.total : names_[a.name] < names_[b.name];
  });
  appendf(out, "%10s %8s %10s %8s %8s %10s %10s %10s  %s\n", "total_ms", "kernel%", "excl_ms", "busy%", "calls",
          "avg_us", "min_us", "max_us", "name");
  for (const Row& r : rows)
    appendf(out, "%10.3f %7.1f%% %10.3f %7.1f%% %8llu %10.2f %10.2f %10.2f  %s\n", ms(r.total),
            100.0 * static_cast<double>(r.total) / static_cast<double>(kernel_ns), ms(r.exclusive),
            covered ? 100.0 * static_cast<double>(r.exclusive) / static_cast<double>(covered) : 0.0,
            static_cast<unsigned long long>(r.calls), us(r.total) / static_cast<double>(r.calls), us(r.min),
            us(r.max), names_[r.name].c_str());
  if (rows.empty()) out += "(no kernels recorded)\n";

  struct CopyRow {
    std::uint64_t count = 0, bytes = 0, ns = 0;
  };
  constexpr int kKinds = static_cast<int>(CopyKind::Other) + 1;
  CopyRow copy_rows[kKinds];
  for (const Copy& c : copies_) {
    if (c.start_ns < cutoff) continue;
    CopyRow& r = copy_rows[static_cast<int>(c.kind)];
    ++r.count;
    r.bytes += c.bytes;
    r.ns += c.end_ns - c.start_ns;
  }
  appendf(out, "\n%-6s %8s %12s %10s\n", "memcpy", "count", "total_MB", "total_ms");
  for (int k = 0; k < kKinds; ++k) {
    const CopyKind kind = static_cast<CopyKind>(k);
    const CopyRow& r = copy_rows[k];
    // HtoD, DtoH and DtoD always show (a zero says "none"); the rarer kinds only when present.
    if (r.count == 0 && kind != CopyKind::HtoD && kind != CopyKind::DtoH && kind != CopyKind::DtoD) continue;
    appendf(out, "%-6s %8llu %12.1f %10.3f\n", copy_kind_name(kind), static_cast<unsigned long long>(r.count),
            static_cast<double>(r.bytes) * 1e-6, ms(r.ns));
  }
  return out;
}

}  // namespace lockstep
