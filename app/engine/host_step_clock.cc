// HostStepClock (see host_step_clock.h).
#include "app/engine/host_step_clock.h"

#include <iomanip>
#include <sstream>

namespace lockstep {

double HostStepClock::average_us(Phase phase) const {
  if (steps_ == 0) return 0.0;
  return std::chrono::duration<double, std::micro>(total_[phase]).count() / static_cast<double>(steps_);
}

std::string HostStepClock::summary() const {
  if (steps_ == 0) return {};
  static constexpr const char* kNames[kPhases] = {"between steps (the caller)", "schedule", "plan + broadcast",
                                                  "own stage (incl. the forward)", "retire"};
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << "host time a step, rank 0 (" << steps_ << " steps):";
  for (int p = 0; p < kPhases; ++p) os << (p ? ", " : " ") << kNames[p] << " " << average_us(Phase(p)) << " us";
  return os.str();
}

}  // namespace lockstep
