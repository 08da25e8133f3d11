// Names of reduction operations as nccl-tests spells them.
#include "comm/collectives.h"

namespace lockstep {

std::optional<ReduceOp> parse_reduce_op(std::string_view n) {
  if (n == "sum") return ReduceOp::Sum;
  if (n == "prod") return ReduceOp::Prod;
  if (n == "max") return ReduceOp::Max;
  if (n == "min") return ReduceOp::Min;
  if (n == "avg") return ReduceOp::Avg;
  return std::nullopt;
}

}  // namespace lockstep
