// commbench --diagnose's pure parts: reading NCCL's transport lines, the advice they lead to,
// and CPU lists.
#include <gtest/gtest.h>

#include "app/commbench/cpu_affinity.h"
#include "app/commbench/nccl_transport_log.h"

namespace lockstep {
namespace {

// Lines in the shape NCCL 2.2x prints with NCCL_DEBUG=INFO.
constexpr const char* kIntraNode = R"(node1:1166:1180 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read
node1:1166:1180 [0] NCCL INFO Channel 01/0 : 0[0] -> 1[1] via P2P/CUMEM/read
node1:1167:1181 [1] NCCL INFO Channel 00/0 : 1[1] -> 0[0] via P2P/CUMEM/read
node1:1166:1180 [0] NCCL INFO Connected all rings, use ring PXN 0 GDR 1
)";

TEST(NcclTransportLog, ClassifiesTransports) {
  EXPECT_EQ(classify_transport("P2P/CUMEM/read"), "P2P");
  EXPECT_EQ(classify_transport("P2P/IPC"), "P2P");
  EXPECT_EQ(classify_transport("SHM/direct/direct"), "SHM");
  EXPECT_EQ(classify_transport("NET/IB/0/GDRDMA"), "NET/IB+GDRDMA");
  EXPECT_EQ(classify_transport("NET/IB/3"), "NET/IB");
  EXPECT_EQ(classify_transport("NET/Socket/0"), "NET/Socket");
  EXPECT_EQ(classify_transport("NET/AWS Libfabric/0/GDRDMA"), "NET/AWS Libfabric+GDRDMA");
}

TEST(NcclTransportLog, ParsesEdgesAndSummarises) {
  const auto edges = parse_transport_edges(kIntraNode);
  ASSERT_EQ(edges.size(), 3u);
  EXPECT_EQ(edges[0].from, 0);
  EXPECT_EQ(edges[0].to, 1);
  EXPECT_EQ(edges[0].transport, "P2P");
  const auto summary = summarize_edges(edges);
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary.at({1, 0}), "P2P");
  const auto advice = transport_advice(summary, {"node1", "node1"});
  ASSERT_EQ(advice.size(), 1u);
  EXPECT_EQ(advice[0].rfind("OK: 2 same-node pair(s) over P2P", 0), 0u) << advice[0];
}

TEST(NcclTransportLog, SocketBetweenNodesGetsIbAdvice) {
  const std::string log =
      "n2:9:9 [0] NCCL INFO Channel 00/0 : 7[7] -> 8[0] [send] via NET/Socket/0\n"
      "n2:9:9 [0] NCCL INFO Channel 00/0 : 7[7] -> 8[0] [receive] via NET/Socket/0\n"
      "n1:9:9 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read\n";
  std::vector<std::string> hosts(16, "n1");
  for (int r = 8; r < 16; ++r) hosts[r] = "n2";
  const auto advice = transport_advice(summarize_edges(parse_transport_edges(log)), hosts);
  ASSERT_EQ(advice.size(), 1u);
  EXPECT_NE(advice[0].find("NET/Socket"), std::string::npos);
  EXPECT_NE(advice[0].find("NCCL_IB_HCA"), std::string::npos);
  EXPECT_NE(advice[0].find("NCCL_SOCKET_IFNAME"), std::string::npos);
}

TEST(NcclTransportLog, IbWithoutGdrGetsPeermemAdvice) {
  const std::string log = "x Channel 02/1 : 3[3] -> 4[0] [send] via NET/IB/1\n"
                          "x Channel 02/1 : 12[4] -> 11[3] via SHM/direct/direct\n";
  std::vector<std::string> hosts = {"a", "a", "a", "a", "b", "b", "b", "b", "b", "b", "b", "b", "b"};
  const auto advice = transport_advice(summarize_edges(parse_transport_edges(log)), hosts);
  ASSERT_EQ(advice.size(), 2u);
  EXPECT_NE(advice[0].find("nvidia-peermem"), std::string::npos);
  EXPECT_NE(advice[0].find("NCCL_NET_GDR_LEVEL"), std::string::npos);
  EXPECT_NE(advice[1].find("do not use P2P"), std::string::npos);
}

TEST(NcclTransportLog, IbWithGdrIsFine) {
  const std::string log = "x Channel 00/0 : 7[7] -> 8[0] [send] via NET/IB/0/GDRDMA\n";
  std::vector<std::string> hosts(16, "n1");
  for (int r = 8; r < 16; ++r) hosts[r] = "n2";
  const auto advice = transport_advice(summarize_edges(parse_transport_edges(log)), hosts);
  ASSERT_EQ(advice.size(), 1u);
  EXPECT_EQ(advice[0].rfind("OK:", 0), 0u);
}

TEST(CpuAffinity, ListsRoundTrip) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::set<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({}), "-");
  EXPECT_FALSE(process_cpu_affinity().empty());
}

}  // namespace
}  // namespace lockstep
