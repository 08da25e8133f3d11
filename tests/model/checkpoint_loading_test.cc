// config.json in both spellings, RoPE frequencies, pipeline layer splits, weights read as bf16
// or fp16, and the loader's clear errors: missing files, unsupported architectures, missing
// tensors, wrong shapes, corrupt safetensors headers.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kernels/fp8.h"
#include "model/dense_transformer.h"
#include "model/layer_weights.h"
#include "model/weight_source.h"
#include "model/model_config.h"
#include "model/pipeline_stages.h"
#include "model/safetensors_reader.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = LOCKSTEP_FIXTURES_DIR;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ReadsHubSpelling) {
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/llama-tiny");
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 16);
  const ModelConfig q = ModelConfig::from_dir(kFixtures + "/qwen2-tiny");
  EXPECT_TRUE(q.attention_bias);
  EXPECT_EQ(q.head_dim, 16);  // hidden / heads when head_dim is absent
  EXPECT_FALSE(q.qk_norm);
  const ModelConfig q3 = ModelConfig::from_dir(kFixtures + "/qwen3-tiny");
  EXPECT_EQ(q3.architecture, "qwen3");
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_FALSE(q3.attention_bias);
  EXPECT_EQ(q3.head_dim, 32);  // as stated, not hidden / heads (16)
  const ModelConfig yarn = ModelConfig::from_dir(kFixtures + "/qwen3-yarn-tiny");
  EXPECT_EQ(yarn.rope_scaling.type, "yarn");
  EXPECT_DOUBLE_EQ(yarn.rope_scaling.factor, 4.0);
  EXPECT_EQ(yarn.rope_scaling.original_max_position_embeddings, 64);
  // What transformers 5.17's _compute_yarn_parameters returns for this config (printed on the GPU
  // host, 2026-12-02): 0.1 ln(4) + 1, the vLLM-only attn_factor (0.878) not applied.
  EXPECT_NEAR(rope_attention_factor(yarn), 1.138629436111989, 1e-12);
}

TEST(ModelConfig, ReadsTransformers5Spelling) {
  const ModelConfig c = ModelConfig::from_json_text(R"({"model_type": "llama", "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
      "dtype": "bfloat16", "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
      "eos_token_id": [1, 2]})", "cfg");
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{1, 2}));
}

TEST(ModelConfig, ClearErrors) {
  EXPECT_NE(error_of([] { ModelConfig::from_dir("/nonexistent"); }).find("/nonexistent/config.json: cannot open"),
            std::string::npos);
  EXPECT_NE(error_of([] { ModelConfig::from_json_text(R"({"model_type": "gpt2"})", "c.json"); })
                .find("model_type \"gpt2\" is not supported"),
            std::string::npos);
  EXPECT_NE(error_of([] { ModelConfig::from_json_text(R"({"model_type": "qwen2"})", "c.json"); })
                .find("c.json: missing \"hidden_size\""),
            std::string::npos);
  EXPECT_NE(error_of([] { ModelConfig::from_json_text("{", "c.json"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([] {
              ModelConfig::from_json_text(R"({"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 1,
                "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "attention_bias": true})", "c.json");
            }).find("qwen3 with attention_bias is not supported"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              ModelConfig::from_json_text(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 1,
                "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
                "rope_scaling": {"rope_type": "longrope", "factor": 4}})", "c.json");
            }).find("rope type \"longrope\" is not supported"),
            std::string::npos);
  // What the forward pass does not implement: refused, not run with other numbers.
  auto with = [](const std::string& model_type, const std::string& extra) {
    return error_of([&] {
      ModelConfig::from_json_text(R"({"model_type": ")" + model_type + R"(", "hidden_size": 64, "intermediate_size": 1,
        "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 10, )" + extra + "}", "c.json");
    });
  };
  EXPECT_NE(with("llama", R"("hidden_act": "gelu")").find("hidden_act \"gelu\" is not supported"), std::string::npos);
  EXPECT_NE(with("llama", R"("mlp_bias": true)").find("mlp_bias is not supported"), std::string::npos);
  EXPECT_NE(with("qwen2", R"("use_sliding_window": true, "sliding_window": 64, "max_window_layers": 2)")
                .find("sliding-window"),
            std::string::npos);
  EXPECT_NE(with("qwen3", R"("use_sliding_window": true, "sliding_window": 64, "layer_types": ["full_attention", "sliding_attention",
                            "full_attention", "full_attention"])")
                .find("sliding-window"),
            std::string::npos);
  // As the published checkpoints write them: accepted.
  EXPECT_EQ(with("qwen2", R"("hidden_act": "silu", "use_sliding_window": false, "sliding_window": 131072,
                            "max_window_layers": 2, "layer_types": ["full_attention", "full_attention",
                            "full_attention", "full_attention"])"), "");
  EXPECT_EQ(with("qwen2", R"("use_sliding_window": true, "sliding_window": 64, "max_window_layers": 4)"), "");  // no layer past it
  EXPECT_EQ(with("qwen2", R"("use_sliding_window": true, "sliding_window": null, "max_window_layers": 2)"), "");  // no window
  EXPECT_EQ(with("qwen2", R"("use_sliding_window": true, "sliding_window": 4096, "max_window_layers": 2,
                            "max_position_embeddings": 4096)"), "");  // the window spans every context
  EXPECT_EQ(with("qwen2", R"("use_sliding_window": true, "sliding_window": 64, "max_window_layers": 2,
                            "layer_types": ["full_attention", "full_attention", "full_attention", "full_attention"])"),
            "");  // layer_types decides
  EXPECT_EQ(with("qwen3", R"("sliding_window": 64, "layer_types": ["full_attention", "sliding_attention",
                            "full_attention", "full_attention"])"),
            "");  // no window without use_sliding_window
  EXPECT_EQ(with("llama", R"("hidden_act": "silu", "mlp_bias": false)"), "");
}

TEST(ModelConfig, Llama3RopeScalesOnlyLongWavelengths) {
  ModelConfig c = ModelConfig::from_dir(kFixtures + "/llama-tiny");
  const std::vector<float> scaled = rope_inverse_frequencies(c);
  c.rope_scaling.type = "default";
  const std::vector<float> plain = rope_inverse_frequencies(c);
  ASSERT_EQ(scaled.size(), 4u);
  // Wavelength 2*pi (index 0) lies between 16/4 and 16/1: blended; long ones divided by 8.
  const double smooth = (16.0 / (2 * M_PI) - 1.0) / (4.0 - 1.0);
  EXPECT_NEAR(scaled[0], (1 - smooth) * plain[0] / 8.0 + smooth * plain[0], 1e-6);
  EXPECT_NEAR(scaled[3], plain[3] / 8.0f, 1e-12f);
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};  // wavelength 2*pi < 8192/4: unchanged
  EXPECT_FLOAT_EQ(rope_inverse_frequencies(c)[0], plain[0]);
}

// YaRN as transformers' _compute_yarn_parameters computes it; the expected values come from a
// plain-Python transcription of that function (float64; transformers works in float32, so the
// tolerance is a few float32 steps).
TEST(ModelConfig, YarnRopeAsTransformersComputesIt) {
  // DeepSeek-R1-0528-Qwen3-8B's config.json, as published (its "attn_factor" is vLLM's key, not
  // transformers': ignored, so the attention factor is derived from factor 4).
  const ModelConfig c = ModelConfig::from_json_text(R"({"model_type": "qwen3", "hidden_size": 4096,
      "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
      "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 131072, "rope_theta": 1000000,
      "rope_scaling": {"attn_factor": 0.8782488562869419, "factor": 4.0,
                       "original_max_position_embeddings": 32768, "rope_type": "yarn"}})", "r1-0528-qwen3-8b");
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  std::vector<float> inv = rope_inverse_frequencies(c);
  ASSERT_EQ(inv.size(), 64u);
  const std::pair<int, double> want[] = {{0, 1.0},          {10, 0.115478198},     {20, 0.0133352143},
                                         {30, 0.00106436098}, {40, 4.44569853e-05}, {63, 3.1023444e-07}};
  for (const auto& [i, v] : want) EXPECT_NEAR(inv[i], v, 2e-7 * v) << "inv_freq[" << i << "]";
  EXPECT_NEAR(rope_attention_factor(c), 1.138629436111989, 1e-12);
  EXPECT_NEAR(attention_softmax_scale(c), 1.138629436111989 * 1.138629436111989 / std::sqrt(128.0), 1e-6);

  // Without truncation the ramp's ends stay fractional (here 0 .. 2.688).
  ModelConfig t = ModelConfig::from_json_text(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 32, "vocab_size": 10, "rope_theta": 1000000,
      "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                       "truncate": false}})", "t");
  inv = rope_inverse_frequencies(t);
  EXPECT_NEAR(inv[1], 0.304035661, 2e-7 * 0.304035661);
  EXPECT_NEAR(inv[2], 0.0785936093, 2e-7 * 0.0785936093);
  EXPECT_NEAR(inv[3], 0.0187473552, 2e-7 * 0.0187473552);

  // DeepSeek-V3's style: mscale and mscale_all_dim (equal: attention factor 1), or an explicit attention_factor.
  ModelConfig d = ModelConfig::from_json_text(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 1, "head_dim": 64, "vocab_size": 10, "rope_theta": 10000,
      "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                       "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}})", "d");
  inv = rope_inverse_frequencies(d);
  EXPECT_NEAR(inv[5], 0.237137371, 2e-7 * 0.237137371);
  EXPECT_NEAR(inv[10], 0.0562341325, 2e-7 * 0.0562341325);
  EXPECT_NEAR(inv[20], 0.000790569415, 2e-7 * 0.000790569415);
  EXPECT_DOUBLE_EQ(rope_attention_factor(d), 1.0);
  EXPECT_FLOAT_EQ(attention_softmax_scale(d), 1.0f / std::sqrt(64.0f));
  d.rope_scaling.attention_factor = 0.5;
  EXPECT_DOUBLE_EQ(rope_attention_factor(d), 0.5);
}

TEST(PipelineStages, SplitsUnevenlyAndHonoursOverride) {
  auto r = pipeline_layer_ranges(3, 2);
  EXPECT_EQ(r[0].begin, 0);
  EXPECT_EQ(r[0].end, 2);
  EXPECT_EQ(r[1].begin, 2);
  EXPECT_EQ(r[1].end, 3);
  r = pipeline_layer_ranges(61, 4, "16,15,15,15");
  EXPECT_EQ(r[3].end, 61);
  EXPECT_NE(error_of([] { pipeline_layer_ranges(61, 4, "16,15,15"); }).find("must list 4 stage sizes summing to 61"),
            std::string::npos);
  EXPECT_NE(error_of([] { pipeline_layer_ranges(3, 4); }).find("3 layers cannot fill 4"), std::string::npos);
}

TEST(SafetensorsCheckpoint, ReadsShardsThroughTheIndex) {
  SafetensorsCheckpoint ckpt(kFixtures + "/qwen2-tiny");
  EXPECT_EQ(ckpt.tensor_count(), 39u);
  const TensorInfo& t = ckpt.get("model.embed_tokens.weight", {301, 64});
  EXPECT_EQ(t.dtype, WeightDType::BF16);
  const auto rows = ckpt.read<bf16>(t, 300, 302, 0, 64);  // last real row + one padding row
  ASSERT_EQ(rows.size(), 128u);
  EXPECT_EQ(rows[64].bits, 0);
  EXPECT_NE(rows[0].bits, 0);
  EXPECT_GT(ckpt.bytes_read(), 0u);
}

TEST(SafetensorsCheckpoint, ClearErrors) {
  EXPECT_NE(error_of([] { SafetensorsCheckpoint c("/nonexistent"); }).find("neither model.safetensors.index.json"),
            std::string::npos);
  SafetensorsCheckpoint ckpt(kFixtures + "/qwen2-tiny");
  EXPECT_NE(error_of([&] { ckpt.get("model.layers.9.mlp.up_proj.weight"); })
                .find("tensor model.layers.9.mlp.up_proj.weight is missing"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ckpt.get("model.embed_tokens.weight", {300, 64}); })
                .find("has shape [301, 64], expected [300, 64]"),
            std::string::npos);

  const fs::path dir = fs::temp_directory_path() / "lockstep-bad-ckpt";
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "model.safetensors", std::ios::binary);
    const std::uint64_t len = 1000;  // claims more header than the file holds
    f.write(reinterpret_cast<const char*>(&len), 8);
    f << "{}";
  }
  EXPECT_NE(error_of([&] { SafetensorsCheckpoint c(dir.string()); }).find("header length past the end"),
            std::string::npos);
  {
    std::ofstream f(dir / "model.safetensors", std::ios::binary);
    const std::string header = R"({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 16]}})";
    const std::uint64_t len = header.size();
    f.write(reinterpret_cast<const char*>(&len), 8);
    f << header << std::string(32, '\0');
  }
  EXPECT_NE(error_of([&] { SafetensorsCheckpoint c(dir.string()); }).find("data offsets do not match"),
            std::string::npos);
  fs::remove_all(dir);
}

// --dtype: weights are read in the type the model runs in. A bf16 tensor read as bf16 is its
// stored bits; read as fp16 it keeps its value (bf16's 8 significant bits fit in fp16's 11)
// wherever that is a normal fp16 number, and rounds at fp16's 2^-24 quantum below 2^-14.
TEST(SafetensorsCheckpoint, ReadsABf16TensorAsBf16AndAsFp16) {
  SafetensorsCheckpoint ckpt(kFixtures + "/qwen2-tiny");
  const TensorInfo& t = ckpt.get("model.layers.0.mlp.down_proj.weight");
  ASSERT_EQ(t.dtype, WeightDType::BF16);
  const std::vector<bf16> same = ckpt.read<bf16>(t);
  ASSERT_EQ(same.size() * sizeof(bf16), t.bytes);
  EXPECT_EQ(std::memcmp(same.data(), t.data, t.bytes), 0);
  const std::vector<fp16> half = ckpt.read<fp16>(t);
  ASSERT_EQ(half.size(), same.size());
  std::size_t normal = 0;
  for (std::size_t i = 0; i < same.size(); ++i) {
    const float want = to_float(same[i]), got = to_float(half[i]);
    if (std::fabs(want) >= 0x1p-14f) {
      ++normal;
      EXPECT_EQ(got, want) << "element " << i;
    } else {
      EXPECT_LE(std::fabs(got - want), 0x1p-25f) << "element " << i;
    }
  }
  EXPECT_GT(normal, same.size() / 2);  // the exact comparison is not vacuous
}

// A one-shard checkpoint of tensors given as (name, safetensors dtype, shape, raw bytes).
struct RawTensor {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};
template <HalfFloat T>
std::string raw(std::initializer_list<float> values) {
  std::string bytes;
  for (float v : values) {
    const T x = from_float<T>(v);
    bytes.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  return bytes;
}
void write_checkpoint(const fs::path& dir, const std::vector<RawTensor>& tensors) {
  std::string header = "{", data;
  for (const RawTensor& t : tensors) {
    std::string shape;
    for (std::int64_t d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    header += (header.size() > 1 ? ", \"" : "\"") + t.name + "\": {\"dtype\": \"" + t.dtype + "\", \"shape\": [" +
              shape + "], \"data_offsets\": [" + std::to_string(data.size()) + ", " +
              std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  fs::create_directories(dir);
  std::ofstream f(dir / "model.safetensors", std::ios::binary);
  const std::uint64_t len = header.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f << header << data;
}

// Conversions as a cast in PyTorch: bf16 -> fp16 overflows to inf past 65504 (65280 is the
// largest bf16 value below it); fp16 -> bf16 rounds to 8 significant bits; a tensor already
// in the requested type is copied bit for bit.
TEST(CheckpointWeights, ConvertsToTheModelDtypeAsPyTorchCasts) {
  const fs::path dir = fs::temp_directory_path() / "lockstep-dtype-ckpt";
  const std::string b = raw<bf16>({1.0f, -2.5f, 65280.0f, 65536.0f, -1.0e6f, 0x1p-20f});
  const std::string h = raw<fp16>({1.0f, 1.0f + 0x1p-10f, 65504.0f});
  write_checkpoint(dir, {{"b", "BF16", {2, 3}, b}, {"h", "F16", {3}, h}});
  SafetensorsCheckpoint ckpt(dir.string());
  const CheckpointWeights w(ckpt);
  const float inf = std::numeric_limits<float>::infinity();
  auto values = [](const auto& v) {
    std::vector<float> f;
    for (const auto& x : v) f.push_back(to_float(x));
    return f;
  };
  EXPECT_EQ(values(w.read_all<fp16>("b", {2, 3})), (std::vector<float>{1.0f, -2.5f, 65280.0f, inf, -inf, 0x1p-20f}));
  EXPECT_EQ(values(w.read_all<bf16>("h", {3})), (std::vector<float>{1.0f, 1.0f, 65536.0f}));
  const std::vector<bf16> b_as_is = w.read_all<bf16>("b", {2, 3});
  const std::vector<fp16> h_as_is = w.read_all<fp16>("h", {3});
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b_as_is.data()), b.size()), b);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(h_as_is.data()), h.size()), h);
  // Rows past the end are zero in either type (vocabulary padding).
  EXPECT_EQ(values(w.read<fp16>("b", {2, 3}, 1, 3, 0, 3)), (std::vector<float>{inf, -inf, 0x1p-20f, 0, 0, 0}));
  fs::remove_all(dir);
}

// --load-format dummy with --dtype half: the same random values, rounded to fp16 instead.
TEST(DummyWeights, GivesTheSameValuesInEitherDtype) {
  const DummyWeights w(/*seed=*/3, /*scale=*/0.5f);
  const std::vector<bf16> b = w.read<bf16>("x.weight", {8, 16}, 2, 10, 0, 16);  // two padding rows
  const std::vector<fp16> h = w.read<fp16>("x.weight", {8, 16}, 2, 10, 0, 16);
  ASSERT_EQ(b.size(), h.size());
  for (std::size_t i = 0; i < b.size(); ++i)  // each within half a bf16 step plus half an fp16 step of the value
    EXPECT_LE(std::fabs(to_float(h[i]) - to_float(b[i])), std::fabs(to_float(b[i])) * 0x1p-8f + 0x1p-24f) << i;
  for (std::size_t i = 6 * 16; i < b.size(); ++i) EXPECT_EQ(to_float(h[i]), 0.0f) << i;
  EXPECT_EQ(to_float(w.read_all<fp16>("model.norm.weight", {4})[3]), 1.0f);
}

// The dummy values are part of what a `--load-format dummy` run means: a benchmark or a bug
// report from one version must mean the same model in the next. These are the values of
// name_hash / value_hash as first written, computed apart from this code (fp32, so no rounding
// hides a change).
TEST(DummyWeights, ValuesStayTheSameAcrossVersions) {
  const DummyWeights w(/*seed=*/0);
  const std::vector<float> got = w.read<float>("model.layers.0.self_attn.q_proj.weight", {4, 8}, 1, 2, 2, 6);
  const std::vector<float> want = {0x1.0b7052p-8f, -0x1.82948ep-9f, 0x1.3282e4p-6f, -0x1.2e789ep-6f};
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
}

// A read big enough to be spread over threads (a thread per 256k values) gives, row for row,
// what reads of one row (one thread) give, its padding rows zero.
TEST(DummyWeights, ThreadedReadsMatchRowReads) {
  const DummyWeights w(/*seed=*/5);
  const std::int64_t rows = 700, cols = 1536, r0 = 3, r1 = 710;  // 1.09M values, 7 padding rows
  const std::vector<bf16> all = w.read<bf16>("model.layers.0.mlp.experts.3.up_proj.weight", {rows, cols}, r0, r1, 0, cols);
  for (std::int64_t r = r0; r < r1; r += 37) {
    const std::vector<bf16> one = r < rows ? w.read<bf16>("model.layers.0.mlp.experts.3.up_proj.weight", {rows, cols}, r,
                                                          r + 1, 0, cols)
                                           : std::vector<bf16>(cols, from_float<bf16>(0.0f));
    for (std::int64_t c = 0; c < cols; ++c)
      ASSERT_EQ(to_float(all[(r - r0) * cols + c]), to_float(one[c])) << "row " << r << " column " << c;
  }
  for (std::int64_t r = rows; r < r1; ++r) EXPECT_EQ(to_float(all[(r - r0) * cols + 5]), 0.0f);
}

TEST(TensorParallelSlice, ReplicatesKvHeadsAndPadsVocab) {
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/qwen2-tiny");  // 4 heads, 2 KV heads, vocab 301
  const auto s = TensorParallelSlice::make(c, 3, 4);
  EXPECT_EQ(s.q_heads, 1);
  EXPECT_EQ(s.q_head_begin, 3);
  EXPECT_EQ(s.kv_heads, 1);
  EXPECT_EQ(s.kv_head_begin, 1);  // query head 3 uses KV head 1
  EXPECT_EQ(s.vocab_padded, 304);
  EXPECT_EQ(s.vocab_begin, 228);
  EXPECT_NE(error_of([&] { TensorParallelSlice::make(c, 0, 3); }).find("does not divide num_attention_heads 4"),
            std::string::npos);
}

// The stacked projections hold the checkpoint's q, k, v (and gate, up) slices one after the
// other, at TP1 and as rank 1 of TP2.
TEST(LayerWeights, StacksQkvAndGateUpByOutputRows) {
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/qwen2-tiny");
  SafetensorsCheckpoint ckpt(kFixtures + "/qwen2-tiny");
  const CheckpointWeights w(ckpt);
  const std::int64_t H = c.hidden_size, hd = c.head_dim, F = c.intermediate_size;
  const std::int64_t QH = c.num_attention_heads * hd, KH = c.num_key_value_heads * hd;
  auto bits = [](const std::vector<bf16>& v) {
    std::vector<std::uint16_t> b(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) b[i] = v[i].bits;
    return b;
  };
  auto cat = [&](std::initializer_list<std::vector<bf16>> parts) {
    std::vector<std::uint16_t> all;
    for (const auto& p : parts) {
      const auto b = bits(p);
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  };
  const std::string p = "model.layers.1.";
  for (const int tp : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << "TP" << tp);
    const TensorParallelSlice s = TensorParallelSlice::make(c, tp - 1, tp);
    const LayerWeights<bf16> L = read_layer_weights<bf16>(c, w, s, 1);
    const std::int64_t q0 = s.q_head_begin * hd, q1 = q0 + s.q_heads * hd;
    const std::int64_t k0 = s.kv_head_begin * hd, k1 = k0 + s.kv_heads * hd, f0 = s.ffn_begin, f1 = f0 + s.ffn;
    EXPECT_EQ(bits(L.qkv), cat({w.read<bf16>(p + "self_attn.q_proj.weight", {QH, H}, q0, q1, 0, H),
                                w.read<bf16>(p + "self_attn.k_proj.weight", {KH, H}, k0, k1, 0, H),
                                w.read<bf16>(p + "self_attn.v_proj.weight", {KH, H}, k0, k1, 0, H)}));
    EXPECT_EQ(bits(L.qkv_bias), cat({w.read<bf16>(p + "self_attn.q_proj.bias", {QH}, q0, q1, 0, 1),
                                     w.read<bf16>(p + "self_attn.k_proj.bias", {KH}, k0, k1, 0, 1),
                                     w.read<bf16>(p + "self_attn.v_proj.bias", {KH}, k0, k1, 0, 1)}));
    EXPECT_EQ(bits(L.gate_up), cat({w.read<bf16>(p + "mlp.gate_proj.weight", {F, H}, f0, f1, 0, H),
                                    w.read<bf16>(p + "mlp.up_proj.weight", {F, H}, f0, f1, 0, H)}));
  }
}

// A WeightSource whose layer `bad` is missing a tensor.
class FailingWeights final : public WeightSource {
 public:
  FailingWeights(const WeightSource& inner, int bad) : inner_(inner), bad_(bad) {}
  void read_into(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t r0, std::int64_t r1,
                 std::int64_t c0, std::int64_t c1, DType to, void* out) const override {
    if (name.rfind("model.layers." + std::to_string(bad_) + ".", 0) == 0)
      throw CheckpointError("tensor " + name + " is missing");
    inner_.read_into(name, shape, r0, r1, c0, c1, to, out);
  }
  std::uint64_t bytes_read() const override { return inner_.bytes_read(); }

 private:
  const WeightSource& inner_;
  int bad_;
};

TEST(LayerPrefetcher, GivesTheStageLayersInOrderAndRethrowsAReadError) {
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/llama-tiny");
  SafetensorsCheckpoint ckpt(kFixtures + "/llama-tiny");
  const CheckpointWeights w(ckpt);
  const TensorParallelSlice s = TensorParallelSlice::make(c, 0, 1);
  LayerPrefetcher<bf16> prefetch(c, w, s, 1, c.num_hidden_layers);
  for (int l = 1; l < c.num_hidden_layers; ++l) {
    const LayerWeights<bf16> got = prefetch.next(), want = read_layer_weights<bf16>(c, w, s, l);
    ASSERT_EQ(got.down.size(), want.down.size());
    EXPECT_TRUE(std::equal(got.down.begin(), got.down.end(), want.down.begin(),
                           [](bf16 a, bf16 b) { return a.bits == b.bits; }))
        << "layer " << l;
  }
  const FailingWeights failing(w, 2);
  LayerPrefetcher<bf16> broken(c, failing, s, 1, 3);
  EXPECT_NO_THROW(broken.next());
  EXPECT_NE(error_of([&] { broken.next(); }).find("tensor model.layers.2."), std::string::npos);
}

// DeepSeek's fp8 weights: each stored e4m3 value times its block's fp32 scale (NAME_scale_inv,
// one per block of quantization_config's weight_block_size), rounded once to the model's type;
// slices cut through blocks; a missing scale or one shaped for other blocks is a clear error.
TEST(CheckpointWeights, DequantizesBlockScaledFp8) {
  const fs::path dir = fs::temp_directory_path() / "lockstep-fp8-ckpt";
  // A 3 x 5 weight in 2 x 2 blocks: scales [2, 3].
  std::string q;
  std::vector<float> stored;
  for (int i = 0; i < 15; ++i) {
    const fp8_e4m3 v = float_to_fp8_e4m3(0.25f * static_cast<float>(i - 7));
    q.push_back(static_cast<char>(v.bits));
    stored.push_back(to_float(v));
  }
  const std::vector<float> scales = {1.0f, 0.5f, 3.0f, 0.125f, 2.0f, 1.5f};
  std::string s(reinterpret_cast<const char*>(scales.data()), scales.size() * sizeof(float));
  write_checkpoint(dir, {{"w.weight", "F8_E4M3", {3, 5}, q},
                         {"w.weight_scale_inv", "F32", {2, 3}, s},
                         {"bare.weight", "F8_E4M3", {3, 5}, q}});
  SafetensorsCheckpoint ckpt(dir.string());
  const CheckpointWeights w(ckpt, 2, 2);
  auto want = [&](int r, int c) { return stored[r * 5 + c] * scales[(r / 2) * 3 + c / 2]; };
  const std::vector<float> all = w.read_all<float>("w.weight", {3, 5});
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 5; ++c) EXPECT_EQ(all[r * 5 + c], want(r, c)) << r << "," << c;
  const std::vector<bf16> part = w.read<bf16>("w.weight", {3, 5}, 1, 3, 1, 4);  // rows 1-2, columns 1-3
  for (int r = 1; r < 3; ++r)
    for (int c = 1; c < 4; ++c) EXPECT_EQ(to_float(part[(r - 1) * 3 + c - 1]), to_float(from_float<bf16>(want(r, c))));
  EXPECT_NE(error_of([&] { w.read_all<bf16>("bare.weight", {3, 5}); }).find("without bare.weight_scale_inv"),
            std::string::npos);
  const CheckpointWeights other_blocks(ckpt, 128, 128);  // expects scales [1, 1]
  EXPECT_NE(error_of([&] { other_blocks.read_all<bf16>("w.weight", {3, 5}); }).find("w.weight_scale_inv has shape [2, 3]"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(ModelConfig, ReadsDeepseekV3) {
  const ModelConfig c = ModelConfig::from_dir(kFixtures + "/deepseek-v3-tiny");
  EXPECT_TRUE(c.is_deepseek_v3());
  EXPECT_EQ(c.mla.q_lora_rank, 24);
  EXPECT_EQ(c.mla.kv_lora_rank, 16);
  EXPECT_EQ(c.mla.qk_head_dim(), 24);
  EXPECT_EQ(c.mla.cache_width(), 24);
  EXPECT_EQ(c.head_dim, 8);  // RoPE turns qk_rope_head_dim
  EXPECT_TRUE(c.mla.rope_interleave);
  EXPECT_EQ(c.moe.n_routed_experts, 8);
  EXPECT_EQ(c.moe.n_group, 4);
  EXPECT_EQ(c.moe.topk_group, 2);
  EXPECT_FALSE(c.moe.is_moe_layer(0));
  EXPECT_TRUE(c.moe.is_moe_layer(1));
  EXPECT_DOUBLE_EQ(c.moe.routed_scaling_factor, 2.5);
  // transformers' scaling: qk_head_dim^-0.5 times yarn's mscale(4, mscale_all_dim 0.707) squared.
  const double m = 0.1 * 0.707 * std::log(4.0) + 1.0;
  EXPECT_NEAR(attention_softmax_scale(c), m * m / std::sqrt(24.0), 1e-7);
  EXPECT_NEAR(rope_attention_factor(c), (0.1 * std::log(4.0) + 1.0) / m, 1e-12);
  const ModelConfig f = ModelConfig::from_dir(kFixtures + "/deepseek-v3-fp8-tiny");
  EXPECT_EQ(f.mla.q_lora_rank, 0);
  EXPECT_FALSE(f.mla.rope_interleave);
  EXPECT_EQ(f.fp8_block_rows, 16);
  EXPECT_EQ(f.fp8_block_cols, 16);
  EXPECT_NEAR(attention_softmax_scale(f), 1.0 / std::sqrt(24.0), 1e-7);
  // TP2: two heads a rank; each expert's 16 columns and the shared expert's split in two.
  const TensorParallelSlice s = TensorParallelSlice::make(c, 1, 2);
  EXPECT_EQ(s.q_head_begin, 2);
  EXPECT_EQ(s.expert_ffn, 8);
  EXPECT_EQ(s.expert_ffn_begin, 8);
  EXPECT_EQ(s.shared_ffn, 8);
  EXPECT_NE(error_of([&] { TensorParallelSlice::make(c, 0, 32); }).find("does not divide"), std::string::npos);
}

// DeepSeek-R1's config.json (benchmarks/configs/deepseek-r1.json, its keys and values as the hub
// repo publishes them, typed in here since nothing on this side can fetch it: yarn under "type",
// the fp8 quantization_config, MTP and training keys lockstep ignores) is read as transformers
// reads it, and splits as a TP8 deployment would.
TEST(ModelConfig, ReadsDeepseekR1sConfig) {
  const ModelConfig c = ModelConfig::from_file(LOCKSTEP_CONFIGS_DIR "/deepseek-r1.json");
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.mla.q_lora_rank, 1536);
  EXPECT_EQ(c.mla.cache_width(), 576);
  EXPECT_EQ(c.moe.n_routed_experts, 256);
  EXPECT_EQ(c.moe.n_group, 8);
  EXPECT_EQ(c.moe.topk_group, 4);
  EXPECT_EQ(c.moe.first_k_dense_replace, 3);
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.fp8_block_rows, 128);
  // mscale == mscale_all_dim: cos/sin unscaled; the softmax scale times (0.1 ln 40 + 1)^2.
  EXPECT_DOUBLE_EQ(rope_attention_factor(c), 1.0);
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(attention_softmax_scale(c), m * m / std::sqrt(192.0), 1e-7);
  const TensorParallelSlice s = TensorParallelSlice::make(c, 7, 8);
  EXPECT_EQ(s.q_heads, 16);
  EXPECT_EQ(s.q_head_begin, 112);
  EXPECT_EQ(s.expert_ffn, 256);
  EXPECT_EQ(s.ffn, 2304);
  EXPECT_EQ(s.vocab_rows, 16160);
}

TEST(ModelConfig, RefusesDeepseekVariantsItDoesNotRun) {
  auto with = [](const std::string& extra) {
    return error_of([&] {
      ModelConfig::from_json_text(R"({"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "kv_lora_rank": 16,
        "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 12, "n_routed_experts": 8,
        "num_experts_per_tok": 2, "n_group": 4, "topk_group": 2, "moe_intermediate_size": 16)" + extra + "}", "c.json");
    });
  };
  EXPECT_EQ(with(""), "");
  EXPECT_NE(with(R"(, "scoring_func": "softmax", "topk_method": "greedy")").find("scoring_func \"softmax\""),
            std::string::npos);  // DeepSeek-V2's routing
  EXPECT_NE(with(R"(, "moe_layer_freq": 2)").find("moe_layer_freq"), std::string::npos);
  EXPECT_NE(with(R"(, "num_experts_per_tok": 5)").find("MoE sizes"), std::string::npos);  // more than 2 groups hold
  EXPECT_NE(with(R"(, "n_group": 3)").find("MoE sizes"), std::string::npos);
  EXPECT_NE(with(R"(, "qk_rope_head_dim": 7)").find("MLA sizes"), std::string::npos);
  EXPECT_NE(with(R"(, "quantization_config": {"quant_method": "awq", "bits": 4})").find("quant_method \"awq\""),
            std::string::npos);
  EXPECT_NE(with(R"(, "quantization_config": {"quant_method": "fp8", "fmt": "e4m3"})").find("weight_block_size"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              ModelConfig::from_json_text(R"({"model_type": "deepseek_v3", "hidden_size": 64, "intermediate_size": 96,
                "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10})", "c.json");
            }).find("missing \"kv_lora_rank\""),
            std::string::npos);
}

}  // namespace
}  // namespace lockstep
