// `lockstep batch` (see batch_command.h).
#include "app/batch/batch_command.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "app/batch/batch_progress.h"
#include "app/engine/step_worker.h"
#include "app/openai/api_error.h"
#include "app/openai/openai_response.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "kernels/fatal.h"
#include "kernels/log.h"

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct PendingRequest {
  std::string custom_id;
  OpenAIRequest request;
  std::vector<std::unique_ptr<ChoiceOutput>> choices;
  std::vector<int> prompt_of_choice;
  std::vector<int> max_tokens_of_choice;  // each choice's allowance (the progress line's time left)
  int unfinished = 0;
};

json error_line(const json& custom_id, int status, const std::string& message, const std::string& param = "") {
  ApiError e(status, message, param);
  return {{"id", "batch_req_" + new_response_id(Endpoint::Completions).substr(5)},
          {"custom_id", custom_id},
          {"response", {{"status_code", status}, {"request_id", nullptr}, {"body", e.to_json()}}},
          {"error", nullptr}};
}

// Why the input cannot run as a whole, or "": a custom_id given twice (results are matched, and
// --resume skips requests, by custom_id, so a repeat would be ambiguous; the OpenAI Batch API
// refuses such a file too). Lines that do not parse are left to their own error lines.
std::string repeated_custom_id(const std::string& path) {
  std::map<std::string, long> first_line;
  std::ifstream in(path);
  long line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("custom_id") || !j["custom_id"].is_string()) continue;
    const auto [it, fresh] = first_line.emplace(j["custom_id"].get<std::string>(), line_no);
    if (!fresh)
      return "custom_id \"" + it->first + "\" is on lines " + std::to_string(it->second) + " and " +
             std::to_string(line_no) + " of --input; custom_ids must be unique (results are matched, and --resume " +
             "skips requests, by them)";
  }
  return "";
}

// Whether --output is a file with something in it. Only regular files count: a device or pipe
// (/dev/stdout, a FIFO) holds no earlier results, and reading one to find out could block.
bool holds_results(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) > 0 && !ec;
}

// Why results could not be appended to --output (empty: they can), found before the model
// loads: a missing directory or a read-only place would otherwise lose every result. A file
// this check creates is removed again.
std::string unwritable(const std::string& path) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  errno = 0;
  std::ofstream probe(path, std::ios::app);
  if (!probe) return "cannot write --output " + path + ": " + (errno ? std::strerror(errno) : "open failed");
  probe.close();
  if (!existed) std::filesystem::remove(path, ec);
  return "";
}

// A run killed in the middle of writing a result leaves its last line incomplete: it cannot be
// parsed (so --resume runs that request again), and the next result appended to it would be
// lost in the same broken line. The part after the last newline goes, with a warning.
void drop_incomplete_last_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = in.tellg();
  if (size <= 0) return;
  std::streamoff keep = size;
  constexpr std::streamoff kChunk = 1 << 16;
  std::string buf;
  for (std::streamoff end = size; end > 0; end -= kChunk) {  // back from the end to the last '\n'
    const std::streamoff begin = std::max<std::streamoff>(0, end - kChunk);
    buf.resize(static_cast<std::size_t>(end - begin));
    in.seekg(begin);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::size_t nl = buf.rfind('\n');
    if (nl != std::string::npos) {
      keep = begin + static_cast<std::streamoff>(nl) + 1;
      break;
    }
    if (begin == 0) keep = 0;
  }
  if (keep == size) return;
  in.close();
  std::filesystem::resize_file(path, static_cast<std::uintmax_t>(keep));
  LS_WARN("--output " << path << " ended in an incomplete line (" << size - keep
                      << " bytes, left by an interrupted run): removed; its request runs again");
}

// The results file, appended a line at a time and flushed, so that what finished is on disk. A
// write that fails (a full disk, a lost file system) throws: the job must stop, not go on
// computing results it cannot keep.
class ResultWriter {
 public:
  explicit ResultWriter(std::string path) : path_(std::move(path)), out_(path_, std::ios::app) {
    if (!out_) fail();
  }
  void write(const json& line) {
    errno = 0;
    out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    out_.flush();
    if (!out_) fail();
  }

 private:
  [[noreturn]] void fail() const {
    throw std::runtime_error("cannot write --output " + path_ + ": " + (errno ? std::strerror(errno) : "write failed") +
                             "; the results written before are kept: free the space (or fix the path) and rerun "
                             "with --resume to do the rest");
  }
  std::string path_;
  std::ofstream out_;
};

int lead_batch(const BatchOptions& o, ModelRuntime& rt);

}  // namespace

CLI::App* add_batch_command(CLI::App& app, BatchOptions& o) {
  CLI::App* cmd = app.add_subcommand("batch", "Run an OpenAI Batch JSONL file (or {\"prompt\": ...} lines) offline");
  add_model_options(*cmd, o.model);
  cmd->add_option("--input", o.input, "Input JSONL")->required();
  cmd->add_option("--output", o.output, "Output JSONL (results are appended as they finish)")->required();
  cmd->add_flag("--resume", o.resume, "Keep the output's results and run only the custom_ids it lacks");
  return cmd;
}

int run_batch(const MpiEnvironment& env, const BatchOptions& o) {
  // Rank 0 checks the files before every rank spends minutes loading the model.
  int ok = 1;
  std::string problem;
  if (env.world_rank() == 0) {
    std::ifstream probe(o.input);
    if (!probe) problem = "cannot read --input " + o.input;
    if (problem.empty() && holds_results(o.output) && !o.resume)
      problem = "--output " + o.output + " already holds results; pass --resume to continue it, or remove it";
    if (problem.empty()) problem = unwritable(o.output);
    if (problem.empty()) problem = repeated_custom_id(o.input);
    ok = problem.empty();
    if (!ok) std::fprintf(stderr, "lockstep batch: error: %s\n", problem.c_str());
  }
  LS_MPI_CHECK(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (!ok) return 2;

  std::unique_ptr<ModelRuntime> rt = ModelRuntime::create_everywhere(env, o.model, "batch");
  if (!rt) return 2;
  if (!rt->leader()) {
    rt->engine().run_follower();
    return 0;
  }
  try {
    return lead_batch(o, *rt);
  } catch (const std::exception& e) {  // the other ranks wait for the next step: end the job
    LS_FATAL("lockstep batch: " << e.what());
  }
}

namespace {

// Rank 0's part: reads the requests, runs the engine until every one has finished, and writes
// the results.
int lead_batch(const BatchOptions& o, ModelRuntime& rt) {
  const ModelContext& ctx = rt.context();
  std::set<std::string> done_ids;
  if (o.resume && holds_results(o.output)) {
    drop_incomplete_last_line(o.output);
    std::ifstream prev(o.output);
    for (std::string line; std::getline(prev, line);) {
      try {
        const json j = json::parse(line);
        if (j.contains("custom_id") && j["custom_id"].is_string()) done_ids.insert(j["custom_id"].get<std::string>());
      } catch (...) {
      }
    }
  }
  ResultWriter out(o.output);
  auto write = [&](const json& line) { out.write(line); };

  std::map<std::uint64_t, std::pair<PendingRequest*, int>> by_seq;  // sequence -> (request, choice)
  std::vector<std::unique_ptr<PendingRequest>> pending;
  std::ifstream in(o.input);
  long line_no = 0, skipped = 0, errors = 0, total = 0;
  std::uint64_t next_seq = 1;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++total;
    json custom_id = "line-" + std::to_string(line_no);  // for lines that carry none
    if (done_ids.count(custom_id.get<std::string>())) {
      ++skipped;
      continue;
    }
    try {
      json j;
      try {
        j = json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw ApiError(400, "line " + std::to_string(line_no) + " is not valid JSON: " + e.what());
      }
      if (!j.is_object()) throw ApiError(400, "line " + std::to_string(line_no) + " is not a JSON object");
      if (j.contains("custom_id")) custom_id = j["custom_id"];
      if (custom_id.is_string() && done_ids.count(custom_id.get<std::string>())) {
        ++skipped;
        continue;
      }
      Endpoint endpoint = Endpoint::Completions;
      json body = j;
      if (j.contains("body")) {
        const std::string url = j.value("url", "");
        if (url == "/v1/chat/completions") endpoint = Endpoint::ChatCompletions;
        else if (url != "/v1/completions") throw ApiError(400, "url must be /v1/completions or /v1/chat/completions", "url");
        if (j.value("method", "POST") != "POST") throw ApiError(400, "method must be POST", "method");
        body = j["body"];
      } else if (j.contains("messages")) {
        endpoint = Endpoint::ChatCompletions;
      }
      if (body.is_object() && !body.contains("model")) body["model"] = ctx.served_model_name;
      auto p = std::make_unique<PendingRequest>();
      p->custom_id = custom_id.is_string() ? custom_id.get<std::string>() : custom_id.dump();
      p->request = parse_openai_request(endpoint, body, ctx);
      for (ChoiceSpec& spec : expand_choices(p->request)) {
        auto seq = std::make_unique<Sequence>();
        seq->id = next_seq++;
        seq->tokens = std::move(spec.generation.prompt);
        seq->sampling = spec.generation.sampling;
        seq->stop = spec.generation.stop;
        const int max_tokens = seq->stop.max_tokens;
        const std::uint64_t id = seq->id;
        if (auto why = rt.scheduler().add(std::move(seq))) {
          for (const auto& [queued, owner] : by_seq)  // the request's earlier choices go too
            if (owner.first == p.get()) rt.scheduler().abort(queued);
          std::erase_if(by_seq, [&](const auto& kv) { return kv.second.first == p.get(); });
          throw ApiError(400, *why, "prompt");
        }
        by_seq[id] = {p.get(), static_cast<int>(p->choices.size())};
        p->choices.push_back(std::make_unique<ChoiceOutput>(p->request, ctx.tokenizer));
        p->prompt_of_choice.push_back(spec.prompt_index);
        p->max_tokens_of_choice.push_back(max_tokens);
        ++p->unfinished;
      }
      pending.push_back(std::move(p));
    } catch (const ApiError& e) {
      ++errors;
      write(error_line(custom_id, e.status, e.what(), e.param));
    }
  }

  BatchProgress progress(pending.size());
  for (const auto& p : pending)
    for (std::size_t c = 0; c < p->choices.size(); ++c) progress.add_choice(p->max_tokens_of_choice[c]);
  const auto start = Clock::now();
  auto last_report = start;
  auto report = [&](bool final) {
    const double sec = std::chrono::duration<double>(Clock::now() - start).count();
    std::fprintf(stderr, "\r%s%s", progress.line(sec).c_str(), final ? "\n" : "");
    std::fflush(stderr);
  };
  auto complete = [&](PendingRequest* p) {
    std::vector<ChoiceResult> results;
    for (std::size_t c = 0; c < p->choices.size(); ++c) results.push_back({p->choices[c].get(), p->prompt_of_choice[c]});
    const std::string id = new_response_id(p->request.endpoint);
    const json body = build_response(p->request, ctx, id, static_cast<std::int64_t>(std::time(nullptr)), results);
    write({{"id", "batch_req_" + id.substr(id.find('-') + 1)},
           {"custom_id", p->custom_id},
           {"response", {{"status_code", 200}, {"request_id", id}, {"body", body}}},
           {"error", nullptr}});
    progress.request_finished();
  };

  // On a GPU each step's tokens are handled on a StepWorker thread while the engine runs the next
  // step (LOCKSTEP_BATCH_STEP_THREAD=0 / 1 overrides: tests, measurements). A stop string found
  // there aborts its sequence before the step after that: the token the sequence makes meanwhile
  // is dropped (its choice has finished and left by_seq).
  const char* step_thread = std::getenv("LOCKSTEP_BATCH_STEP_THREAD");
  const bool threaded = step_thread && *step_thread ? std::string(step_thread) != "0" : rt.on_gpu();
  std::mutex stop_mu;
  std::vector<std::uint64_t> stopped;  // sequences to abort, from the worker to this thread
  StepWorker worker([&](StepOutput& step) {
    const double step_sec = std::chrono::duration<double>(Clock::now() - start).count();
    for (TokenEvent& e : step.tokens) {
      auto it = by_seq.find(e.id);
      if (it == by_seq.end()) continue;
      auto [p, c] = it->second;
      ChoiceOutput& choice = *p->choices[c];
      if (!e.prompt_logprobs.empty()) choice.set_prompt_logprobs(std::move(e.prompt_logprobs));
      progress.on_token(step_sec);
      choice.on_token(e.token, e.logprobs ? &*e.logprobs : nullptr);
      FinishReason reason = e.finish;
      if (reason == FinishReason::None && choice.stopped()) {  // a stop string: end it now
        std::lock_guard lock(stop_mu);
        stopped.push_back(e.id);
        reason = FinishReason::Stop;
      }
      if (reason == FinishReason::None) continue;
      choice.finish(reason);
      progress.choice_finished(p->max_tokens_of_choice[c], choice.token_ids().size());
      by_seq.erase(it);
      if (--p->unfinished == 0) complete(p);
    }
    if (Clock::now() - last_report > std::chrono::milliseconds(500)) {
      report(false);
      last_report = Clock::now();
    }
  }, threaded);
  while (!rt.scheduler().idle()) {
    {
      std::lock_guard lock(stop_mu);
      for (std::uint64_t id : stopped) rt.scheduler().abort(id);
      stopped.clear();
    }
    worker.post(rt.engine().step());
  }
  worker.finish();
  rt.engine().shutdown();
  report(true);
  const double sec = std::chrono::duration<double>(Clock::now() - start).count();
  std::fprintf(stderr, "[batch] done: %zu succeeded, %ld failed, %ld skipped (already in the output), %llu tokens "
                       "generated in %.3f s (%.1f tok/s) -> %s\n",
               progress.finished(), errors, skipped, static_cast<unsigned long long>(progress.generated()), sec,
               sec > 0 ? static_cast<double>(progress.generated()) / sec : 0.0, o.output.c_str());
  return 0;
}

}  // namespace
}  // namespace lockstep
