// What every CPU-backend stage does at its ends, whatever its layers: stage 0 embeds the tokens
// (its vocabulary rows, all-reduced over TP), later stages receive the hidden states from the
// previous stage; the last stage takes the logit rows through the final norm and its lm_head rows
// and gathers the vocabulary over TP, the others send the hidden states on.
#pragma once

#include <span>
#include <vector>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"

namespace lockstep {

// The stage's input hidden states [tokens, hidden] (fp32) into h.
template <HalfFloat W>
void cpu_stage_input(const ModelConfig& c, const TensorParallelSlice& s, const StageEdgeWeights<W>& edge,
                     Collectives& tp, Collectives& pp, const ForwardBatch& b, std::vector<float>& h);

// The last stage's logits [logit_rows, vocab] into logits (true); other stages send h to the next
// stage (false).
template <HalfFloat W>
bool cpu_stage_output(const ModelConfig& c, const TensorParallelSlice& s, const StageEdgeWeights<W>& edge,
                      Collectives& tp, Collectives& pp, const ForwardBatch& b, std::vector<float>& h,
                      std::vector<float>& logits);

}  // namespace lockstep
