// Reads NCCL's own debug output (NCCL_DEBUG=INFO) for the transport it chose between each
// pair of ranks — "Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read", "... [send] via
// NET/IB/0/GDRDMA", "... via NET/Socket/0", "... via SHM/direct/direct" — and turns the
// summary into the advice people otherwise work out by grepping those logs.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lockstep {

struct TransportEdge {
  int from = -1;
  int to = -1;
  std::string transport;  // classified: P2P, SHM, NET/IB+GDRDMA, NET/IB, NET/Socket, or NCCL's own name
};

// "P2P/CUMEM/read" -> "P2P", "NET/IB/0/GDRDMA" -> "NET/IB+GDRDMA", "NET/IB/1" -> "NET/IB",
// "NET/Socket/0" -> "NET/Socket", "SHM/direct/direct" -> "SHM".
std::string classify_transport(const std::string& via);

// Every "Channel ... : a[..] -> b[..] ... via X" line of a log.
std::vector<TransportEdge> parse_transport_edges(const std::string& log);

// (from, to) -> the set of transports seen, joined with "," when more than one.
std::map<std::pair<int, int>, std::string> summarize_edges(const std::vector<TransportEdge>& edges);

// Plain advice from the summary; host_of[rank] tells which pairs cross nodes.
std::vector<std::string> transport_advice(const std::map<std::pair<int, int>, std::string>& summary,
                                          const std::vector<std::string>& host_of);

}  // namespace lockstep
