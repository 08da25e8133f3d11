#!/usr/bin/env bash
# On a GPU host (the `device` machines): build, then the CUDA backend's correctness checks and
# benchmarks, each step's output in OUT_DIR. Steps: kernels (every cuda:: op against the CPU
# reference, the CUDA graph cache, the step gap meter, the weight upload), parity (transformers fixtures on the CUDA backend, the model stage and the whole
# engine, at TP1, TP2, PP2 and, with 4 GPUs, TP2xPP2, TP4, PP4; bf16 and fp16),
# shared (collectives, parity and serving at the layouts of 2 and 4 ranks the GPUs are too few
# for, the ranks sharing them through MPI-staged collectives: the CUDA kernels' sharded paths on
# any host; NCCL and CUDA graphs at TP > 1 need a GPU a rank), memory (the GPU memory report, and
# the error with its figures when nothing is left for the KV cache),
# serve (the OpenAI-client end-to-end test on
# GPUs, at the largest layout the GPUs allow, --dtype auto and half, on SERVE_FIXTURES (default
# qwen2-tiny llama-tiny deepseek-v3-tiny); needs node), kernel_bench, decode (batch decode at DeepSeek-R1-Distill-Qwen-7B shapes), peer
# (transformers' generate() on the same shapes, and PyTorch's attention on kernel_bench's prefill
# shapes, in the same call), offline (1k-in/1k-out
# throughput at full batch, 7B shapes, one GPU), scaling (batch-1 decode at
# DeepSeek-R1-Distill-Llama-70B shapes on 1, 2 and 4 GPUs, TP; 141 GB of bf16 weights fit one
# H200 at --gpu-memory-utilization 0.98 with 2048 batched tokens), family (not by default: batch
# 1 and 32 decode at each R1 distill's shapes that fits one GPU), profile (not by
# default: the per-kernel time table of batch-1 decode at 7B shapes (PROFILE_CONFIG: another
# config.json), from Nsight Systems where nsys
# exists, else from $BUILD/benchmarks/libkernel_profile.so, CUPTI injected through CUDA_INJECTION64_PATH),
# offline_profile (not by default: the offline run's kernel table, CUPTI),
# offline_sampled (not by default: sampled requests, drawn on the host and on the GPU),
# serve_load (not by default: benchmarks/serve_load.mjs against `lockstep serve` at 7B shapes),
# load (not by default: a real 7B-shape checkpoint onto the GPU, lockstep and transformers).
# usage: scripts/gpu_check.sh OUT_DIR [STEP ...]   (default: every step not marked "not by default")
set -uo pipefail
out=$1; shift
steps=${*:-kernels parity shared memory serve kernel_bench decode peer offline scaling}
mkdir -p "$out"
. scripts/gpu_host_build.sh >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
tail -1 "$out/build.log"
gpus=$(nvidia-smi -L | wc -l)
M="mpirun --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE"
status=0
step() { echo "== $1: $2"; }
# node, and the serving test's node_modules, from .deps when the host lacks them
# (scripts/gpu_deps_bundle.sh with WITH_NODE=1).
use_node() {
  if ! command -v node >/dev/null && [ -f .deps/node.xz ]; then
    mkdir -p /tmp/node/bin && xz -dc .deps/node.xz >/tmp/node/bin/node && chmod +x /tmp/node/bin/node &&
      export PATH=/tmp/node/bin:$PATH
  fi
  [ -d tests/app/serve/node_modules ] || [ ! -f .deps/serve_node_modules.tar.xz ] ||
    tar xJf .deps/serve_node_modules.tar.xz -C tests/app/serve
}
# The benchmarks' tokenizer: Qwen2.5's (R1-Distill-Qwen-7B's vocabulary, from .deps, see
# scripts/gpu_deps_bundle.sh), so that detokenizing the dummy model's output costs what it would;
# else the tiny fixture's (301 tokens: most ids then decode to nothing).
tok7b=tests/fixtures/models/qwen2-tiny
if [ -f .deps/qwen2_5_tokenizer.tar.xz ]; then
  mkdir -p /tmp/qwen2_5 && tar xJf .deps/qwen2_5_tokenizer.tar.xz -C /tmp/qwen2_5 && tok7b=/tmp/qwen2_5/models
fi
echo "benchmark tokenizer: $tok7b"
for s in $steps; do
  case $s in
    kernels)
      "$BUILD/tests/cuda_dense_ops_test" >"$out/kernels.txt" 2>&1; rc=$?
      "$BUILD/tests/cuda_latent_attention_test" >>"$out/kernels.txt" 2>&1 || rc=1
      "$BUILD/tests/cuda_moe_experts_test" >>"$out/kernels.txt" 2>&1 || rc=1
      "$BUILD/tests/cuda_fp8_weights_test" >>"$out/kernels.txt" 2>&1 || rc=1
      "$BUILD/tests/cuda_graph_cache_test" >>"$out/kernels.txt" 2>&1 || rc=1
      "$BUILD/tests/step_gap_meter_test" >>"$out/kernels.txt" 2>&1 || rc=1
      "$BUILD/tests/weight_upload_test" >>"$out/kernels.txt" 2>&1 || rc=1
      step kernels "rc=$rc $(grep -E '^\[  (PASSED|FAILED) ' "$out/kernels.txt" | tr '\n' ' ')"
      grep -E '^\[  FAILED  \]' "$out/kernels.txt" | head; [ $rc = 0 ] || status=1 ;;
    parity)
      for np in 1 2 4; do
        [ "$np" -le "$gpus" ] || continue
        $M -np $np "$BUILD/tests/model_parity_test" --backend=nccl >"$out/parity_np$np.txt" 2>&1; rc=$?
        $M -np $np "$BUILD/tests/engine_parity_test" --backend=nccl >"$out/engine_np$np.txt" 2>&1; rc2=$?
        step "parity np$np" "model rc=$rc, engine rc=$rc2"
        grep -E 'FAILED|Failure' "$out/engine_np$np.txt" | sort -u | head -10
        [ $rc2 = 0 ] || status=1
        grep -E '^\[parity\]|FAILED|Failure|error' "$out/parity_np$np.txt" | sort -u | head -40
        [ $rc = 0 ] || status=1
      done ;;
    memory)
      # The GPU memory report: each rank logs what its weights, step buffers and KV cache take; with
      # nothing left for the cache the job stops with those figures (7B shapes, dummy weights).
      . benchmarks/dummy_batch.sh
      dummy_model_dir /tmp/memory benchmarks/configs/deepseek-r1-distill-qwen-7b.json "$tok7b" &&
        echo '{"prompt": [1, 2, 3], "max_tokens": 2}' >/tmp/memory/in.jsonl
      rc=0
      for util in 0.9 0.1; do
        rm -f /tmp/memory/out.jsonl
        LOCKSTEP_LOG_LEVEL=info timeout 120 $M -np 1 "$BUILD/app/lockstep" batch --model /tmp/memory/model \
          --load-format dummy --device cuda --gpu-memory-utilization $util --input /tmp/memory/in.jsonl \
          --output /tmp/memory/out.jsonl >"$out/memory_$util.txt" 2>&1
        r=$?; grep -E "GiB" "$out/memory_$util.txt" | head -2
        if [ $util = 0.9 ]; then
          [ $r = 0 ] && grep -qE "weights take 1[45]\.[0-9]+ GiB.*the KV cache gets [0-9.]+ GiB" "$out/memory_$util.txt" || rc=1
        else
          [ $r != 0 ] && [ $r != 124 ] && grep -q "no GPU memory is left for the KV cache: GPU 0 has" "$out/memory_$util.txt" || rc=1
        fi
      done
      step memory "rc=$rc"; [ $rc = 0 ] || status=1 ;;
    serve)
      # The OpenAI-client end-to-end test on GPUs: TP2 x PP2 on 4, TP2 on 2-3, TP1 on 1. bf16 runs
      # may part from the fp32 fixtures where transformers' top-2 margin is below 0.2 (the largest
      # logit gap measured at TP1 is 1.3e-1; transformers' own bf16 run's is 1.7e-1).
      use_node
      if command -v node >/dev/null && [ -d tests/app/serve/node_modules ]; then
        if [ "$gpus" -ge 4 ]; then np=4 layout="-tp 2 -pp 2"; elif [ "$gpus" -ge 2 ]; then np=2 layout="-tp 2"; else np=1 layout="-tp 1"; fi
        rc=0
        # SERVE_DTYPES: the --dtype values to serve with (auto is the fixtures' bfloat16).
        for dtype in ${SERVE_DTYPES:-auto half}; do
          for fixture in ${SERVE_FIXTURES:-qwen2-tiny llama-tiny deepseek-v3-tiny}; do
            SERVE_TEST_NP=$np SERVE_TEST_LAYOUT=$layout SERVE_TEST_FLAGS="--device cuda --dtype $dtype" \
              LOCKSTEP_SERVE_TEST_MIN_MARGIN=0.2 \
              bash tests/app/serve/serve_test.sh mpirun "$BUILD/app/lockstep" tests/fixtures/models $fixture \
              >"$out/serve_${fixture}_$dtype.txt" 2>&1 || rc=1
          done
        done
        step serve "rc=$rc ($layout) $(grep -hE 'checks passed|^PASS|^FAIL' "$out"/serve_*.txt | head -12 | tr '\n' ' ')"
        grep -h "^FAIL" "$out"/serve_*.txt | head -20
        [ $rc = 0 ] || status=1
      else
        step serve "skipped (no node, or no tests/app/serve/node_modules)"
      fi ;;
    shared)
      rc=0
      for np in 2 4; do
        [ "$np" -gt "$gpus" ] || continue  # the parity step runs it on NCCL
        for t in collectives_test model_parity_test engine_parity_test; do
          $M -np $np "$BUILD/tests/$t" --backend=mpi-staged --gtest_color=no >"$out/shared_${t}_np$np.txt" 2>&1 || rc=1
          echo "$t np$np: $(grep -E '^\[  (PASSED|FAILED) ' "$out/shared_${t}_np$np.txt" | tr '\n' ' ')"
          grep -E '^\[parity\]' "$out/shared_${t}_np$np.txt" | sort -u | head -24
          grep -E 'FAILED|Failure' "$out/shared_${t}_np$np.txt" | sort -u | head -10
        done
      done
      # NCCL with two ranks on one GPU: every rank stops with the message naming --backend mpi.
      if [ "$gpus" -lt 2 ]; then
        echo '{"prompt": [1, 2, 3], "max_tokens": 2}' >/tmp/shared_in.jsonl
        timeout 120 $M -np 2 "$BUILD/app/lockstep" batch --model tests/fixtures/models/llama-tiny --device cuda -tp 2 \
          --input /tmp/shared_in.jsonl --output /tmp/shared_out.jsonl >"$out/shared_nccl_refused.txt" 2>&1
        r=$?
        if [ $r != 0 ] && [ $r != 124 ] && grep -q "NCCL needs a GPU of its own" "$out/shared_nccl_refused.txt"; then
          echo "NCCL with 2 ranks on a GPU: refused with the message (exit $r)"
        else
          echo "NCCL with 2 ranks on a GPU: exit $r, message missing"; rc=1
        fi
      fi
      use_node
      if [ "$gpus" -lt 4 ] && command -v node >/dev/null && [ -d tests/app/serve/node_modules ]; then
        for fixture in ${SERVE_FIXTURES:-qwen2-tiny llama-tiny deepseek-v3-tiny}; do
          SERVE_TEST_NP=4 SERVE_TEST_LAYOUT="-tp 2 -pp 2" SERVE_TEST_FLAGS="--device cuda --backend mpi" \
            LOCKSTEP_SERVE_TEST_MIN_MARGIN=0.2 \
            bash tests/app/serve/serve_test.sh mpirun "$BUILD/app/lockstep" tests/fixtures/models $fixture \
            >"$out/shared_serve_$fixture.txt" 2>&1 || rc=1
        done
        echo "serve TP2 x PP2: $(grep -hE 'checks passed|^PASS|^FAIL' "$out"/shared_serve_*.txt | head -8 | tr '\n' ' ')"
        grep -h "^FAIL" "$out"/shared_serve_*.txt | head -20
      fi
      step shared "rc=$rc"; [ $rc = 0 ] || status=1 ;;
    kernel_bench)
      "$BUILD/benchmarks/kernel_bench" --benchmark_counters_tabular=true --benchmark_filter="${KERNEL_BENCH_FILTER:-.}" \
        >"$out/kernel_bench.txt" 2>&1  # KERNEL_BENCH_FILTER: a regex of benchmark names
      step kernel_bench "rc=$?"; grep -v "^\*\*\*" "$out/kernel_bench.txt" | head -100 ;;
    decode)
      # With CUDA graphs (the default), and eager for comparison (also the fallback's figures);
      # DECODE_MODES may add no-pdl: graphs without programmatic dependent launch; half: graphs
      # with --dtype half (fp16 weights and KV cache); fp8: graphs with --kv-cache-dtype fp8.
      for mode in ${DECODE_MODES:-graphs eager}; do
        flags=(--device cuda); [ $mode = eager ] && flags+=(--enforce-eager)
        [ $mode = half ] && flags+=(--dtype half)
        [ $mode = fp8 ] && flags+=(--kv-cache-dtype fp8)
        [ $mode = no-pdl ] && export LOCKSTEP_DEPENDENT_LAUNCH=0
        # Debug logging adds the GPU's idle time between steps (StepGapMeter) and rank 0's host
        # time a step by phase (HostStepClock) to each run's log.
        LOCKSTEP_LOG_LEVEL=debug bash benchmarks/decode_bench.sh "$BUILD/app/lockstep" \
          benchmarks/configs/deepseek-r1-distill-qwen-7b.json \
          "$tok7b" /tmp/decode_$mode 1 "1 32" 128 256 -- "${flags[@]}" \
          >"$out/decode_$mode.txt" 2>&1
        step "decode ($mode)" "rc=$?"; cat "$out/decode_$mode.txt"; tail -3 /tmp/decode_$mode/req_1_128_256.log
        for b in 1 32; do echo "batch $b: $(grep -hE 'GPU idle|host time a step' /tmp/decode_$mode/req_${b}_128_256.log)"; done
        unset LOCKSTEP_DEPENDENT_LAUNCH
      done ;;
    offline)
      # OFFLINE_PROMPTS (256) prompts, MAX_NUM_SEQS (256) of them at a time, OFFLINE_FLAGS added to
      # lockstep's (vLLM's offline LLM class defaults to 1024 sequences and 16384 batched tokens on
      # GPUs of 70 GB or more: e.g. OFFLINE_PROMPTS=1024 MAX_NUM_SEQS=1024
      # OFFLINE_FLAGS="--max-num-batched-tokens 16384").
      # shellcheck disable=SC2086
      LOCKSTEP_LOG_LEVEL=debug bash benchmarks/offline_throughput.sh "$BUILD/app/lockstep" \
        benchmarks/configs/deepseek-r1-distill-qwen-7b.json "$tok7b" /tmp/offline 1 \
        "${OFFLINE_PROMPTS:-256}" 1024 1024 -- --device cuda ${OFFLINE_FLAGS:-} >"$out/offline.txt" 2>&1
      step offline "rc=$?"; cat "$out/offline.txt"; grep -hE 'KV cache|error|GPU idle|host time a step' /tmp/offline/*.log | head -5 ;;
    serve_load)
      # benchmarks/serve_load.mjs against `lockstep serve` at 7B shapes (dummy weights) on one GPU:
      # streamed completions of 128 prompt tokens and 256 new, 1 / 8 / 16 / 32 in flight.
      use_node
      if ! command -v node >/dev/null; then step serve_load "skipped (no node)"; continue; fi
      . benchmarks/dummy_batch.sh
      . scripts/serve_helpers.sh
      dummy_model_dir /tmp/serve_load benchmarks/configs/deepseek-r1-distill-qwen-7b.json "$tok7b"
      $M -np 1 "$BUILD/app/lockstep" serve --model /tmp/serve_load/model --load-format dummy --device cuda \
        --served-model-name r1-7b --port 0 --host 127.0.0.1 >"$out/serve_load_server.log" 2>&1 &
      server=$!
      if url=$(wait_for_server "$out/serve_load_server.log" "$server" 300); then
        node benchmarks/serve_load.mjs --url "$url" --model r1-7b --concurrency 1,8,16,32 --prompt-len 128 \
          --max-tokens 256 --vocab 151000 --json "$out/serve_load.json" >"$out/serve_load.txt" 2>&1
        rc=$?
        rank0=$(rank0_pid "lockstep serve --model /tmp/serve_load/model") && kill -TERM "$rank0"
        wait "$server" || rc=1
      else
        rc=1; kill -9 "$server" 2>/dev/null; tail -20 "$out/serve_load_server.log"
      fi
      step serve_load "rc=$rc"; cat "$out/serve_load.txt" ;;
    offline_sampled)
      # Sampled requests (256 prompts of 256 tokens, 256 new): greedy, then vLLM's temperature 1.0
      # and DeepSeek-R1's 0.6 / top_p 0.95, each drawn on the host (LOCKSTEP_GPU_SAMPLING=0) and
      # on the GPU (the default).
      for sampling in '' '{"temperature": 1.0}' '{"temperature": 0.6, "top_p": 0.95}'; do
        for gpu_sampling in 0 1; do
          [ -z "$sampling" ] && [ $gpu_sampling = 1 ] && continue
          printf '%-40s LOCKSTEP_GPU_SAMPLING=%s ' "${sampling:-greedy}" $gpu_sampling >>"$out/offline_sampled.txt"
          SAMPLING="$sampling" LOCKSTEP_GPU_SAMPLING=$gpu_sampling bash benchmarks/offline_throughput.sh "$BUILD/app/lockstep" \
            benchmarks/configs/deepseek-r1-distill-qwen-7b.json "$tok7b" /tmp/offline_sampled 1 256 256 256 \
            -- --device cuda 2>&1 | tail -1 >>"$out/offline_sampled.txt"
        done
      done
      step offline_sampled "done"; cat "$out/offline_sampled.txt" ;;
    offline_profile)
      # The offline run's kernel table (CUPTI, benchmarks/kernel_profile): OFFLINE_PROMPTS (256) prompts of 1024
      # tokens, OFFLINE_PROFILE_NEW (256) new each, so prefill and decode at full batch both show
      # (1024: the 1k/1k run itself, its decode steps at 1024-2048 positions); OFFLINE_FLAGS as offline.
      kp=$BUILD/benchmarks/libkernel_profile.so
      if [ ! -f "$kp" ]; then step offline_profile "skipped (no $kp)"; continue; fi
      rm -f /tmp/offline_profile.txt
      LOCKSTEP_DEPENDENT_LAUNCH=0 CUDA_INJECTION64_PATH=$kp LOCKSTEP_KERNEL_PROFILE=/tmp/offline_profile.txt \
        bash benchmarks/offline_throughput.sh \
        "$BUILD/app/lockstep" benchmarks/configs/deepseek-r1-distill-qwen-7b.json "$tok7b" \
        /tmp/offline_profile 1 "${OFFLINE_PROMPTS:-256}" 1024 "${OFFLINE_PROFILE_NEW:-256}" -- --device cuda ${OFFLINE_FLAGS:-} \
        >"$out/offline_profile.txt" 2>&1
      step offline_profile "rc=$?"; cat "$out/offline_profile.txt"; cp /tmp/offline_profile.txt "$out/offline_kernels.txt" &&
        head -30 "$out/offline_kernels.txt" ;;
    load)
      # A real checkpoint onto the GPU: make-checkpoint's random bf16 weights in hub layout at 7B
      # shapes (15 GB of safetensors), loaded by `lockstep batch` for one token (the loader's GB/s
      # from its log, and the whole run's wall time) twice from the page cache and once from the
      # disk, the same from its `lockstep convert` model.h5, each also read by weight_read_bench
      # alone (warm), then transformers' from_pretrained onto the GPU the same two ways (the peer),
      # then the disk's own read rate.
      ckpt=/tmp/load_ckpt
      "$BUILD/app/lockstep" make-checkpoint --config benchmarks/configs/deepseek-r1-distill-qwen-7b.json \
        --tokenizer "$tok7b" --output $ckpt --force 2>&1 | tr '\r' '\n' | tail -1 >"$out/load.txt"; sync
      echo '{"prompt": [1000, 1001, 1002], "max_tokens": 1, "ignore_eos": true}' >/tmp/load_req.jsonl
      # The same checkpoint as model.h5 (`lockstep convert`), read at its datasets' offsets (Hdf5Weights).
      "$BUILD/app/lockstep" convert --model $ckpt --output /tmp/load_h5 --force 2>&1 | tail -1 >>"$out/load.txt"
      for dir in $ckpt /tmp/load_h5; do
        echo "== $dir" >>"$out/load.txt"
        for i in warm warm cold; do
          # cold: the page cache dropped first (root only), so the files come from the disk.
          if [ $i = cold ] && ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
            echo "cold: skipped (cannot drop the page cache)" >>"$out/load.txt"; continue
          fi
          echo -n "$i: " >>"$out/load.txt"
          rm -f /tmp/load_out.jsonl
          t0=$(date +%s.%N)
          LOCKSTEP_LOG_LEVEL=info $M -np 1 "$BUILD/app/lockstep" batch --model $dir --device cuda \
            --input /tmp/load_req.jsonl --output /tmp/load_out.jsonl >/tmp/load_run.log 2>&1; rc=$?
          t1=$(date +%s.%N)
          grep -E "loading weights.*layer ([0-9]+)/\1," /tmp/load_run.log | tail -1 >>"$out/load.txt"
          echo "lockstep batch (1 token, start to exit): $(awk "BEGIN { print $t1 - $t0 }") s, rc=$rc" >>"$out/load.txt"
          [ $rc = 0 ] || tail -5 /tmp/load_run.log >>"$out/load.txt"
        done
        # The reader alone, from the page cache into reused host buffers (no pinned memory, no DMA).
        [ -x "$BUILD/benchmarks/weight_read_bench" ] &&
          $M -np 1 "$BUILD/benchmarks/weight_read_bench" --model $dir --repeat 2 2>&1 | tail -2 >>"$out/load.txt"
      done
      py=python3; [ -x /opt/torch/.venv/bin/python ] && py=/opt/torch/.venv/bin/python
      echo -n "warm: " >>"$out/load.txt"
      CUDA_VISIBLE_DEVICES=0 $py benchmarks/transformers_load.py $ckpt 2>&1 | tail -1 >>"$out/load.txt"
      if { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        echo -n "cold: " >>"$out/load.txt"
        CUDA_VISIBLE_DEVICES=0 $py benchmarks/transformers_load.py $ckpt 2>&1 | tail -1 >>"$out/load.txt"
      fi
      # The disk's own rate (the cold rows' ceiling): every shard read at once by `dd` with
      # O_DIRECT in 64 MiB requests, the page cache dropped first.
      if { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        bytes=$(du -cb $ckpt/*.safetensors | tail -1 | cut -f1)
        t0=$(date +%s.%N)
        for f in $ckpt/*.safetensors; do dd if="$f" of=/dev/null bs=64M iflag=direct status=none & done; wait
        t1=$(date +%s.%N)
        echo "disk: $bytes bytes of shards read with O_DIRECT, all shards at once: $(awk "BEGIN { printf \"%.2f\", $bytes / ($t1 - $t0) / 1e9 }") GB/s" >>"$out/load.txt"
      fi
      step load "done"; cat "$out/load.txt" ;;
    scaling)
      for np in 1 2 4; do
        [ "$np" -le "$gpus" ] || continue
        bash benchmarks/decode_bench.sh "$BUILD/app/lockstep" benchmarks/configs/deepseek-r1-distill-llama-70b.json \
          tests/fixtures/models/llama-tiny "/tmp/scaling$np" "$np" "1" 128 256 -- --device cuda -tp "$np" \
          --gpu-memory-utilization 0.98 --max-num-batched-tokens 2048 \
          >"$out/scaling_tp$np.txt" 2>&1
        step "scaling tp$np" "rc=$?"; cat "$out/scaling_tp$np.txt"
      done ;;
    family)
      # Decode at every DeepSeek-R1 distill's shapes that fits one GPU (dummy bf16 weights, 128
      # prompt tokens, 256 new, batch 1 and FAMILY_BATCHES), each with the GB a step reads.
      rc=0
      for m in ${FAMILY_MODELS:-qwen-1.5b qwen-7b llama-8b qwen-14b qwen-32b}; do
        cfg=benchmarks/configs/deepseek-r1-distill-$m.json tok=$tok7b
        case $m in llama-*) tok=tests/fixtures/models/llama-tiny ;; esac
        python3 - "$cfg" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
h, i, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
q, kv = c["num_attention_heads"], c["num_key_value_heads"]
hd = c.get("head_dim") or h // q
layer = h * (q + 2 * kv) * hd + q * hd * h + 3 * h * i
print(f"{sys.argv[1]}: a decode step reads {2 * (n * layer + c['vocab_size'] * h) / 1e9:.2f} GB of bf16 weights")
PY
        bash benchmarks/decode_bench.sh "$BUILD/app/lockstep" "$cfg" "$tok" "/tmp/family_$m" 1 "1 ${FAMILY_BATCHES-32}" \
          128 256 -- --device cuda >"$out/family_$m.txt" 2>&1 || rc=1
        cat "$out/family_$m.txt"
      done
      step family "rc=$rc"; [ $rc = 0 ] || status=1 ;;
    profile)
      # 256 new tokens after a 128-token prompt at batch 1, so decode dominates the table. Without
      # nsys, the CUPTI library also leaves out the first 500 ms after the first kernel: prefill and
      # some 70 decode steps, the graph captures among them (the weight upload comes before it).
      nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys 2>/dev/null)
      kp=$BUILD/benchmarks/libkernel_profile.so
      if [ -z "$nsys" ] && [ ! -f "$kp" ]; then step profile "skipped (no nsys, no $kp)"; continue; fi
      batch=("$BUILD/app/lockstep" batch --model /tmp/profile/model --load-format dummy --device cuda
             --input /tmp/profile/req.jsonl --output /tmp/profile/out.jsonl)
      . benchmarks/dummy_batch.sh
      dummy_model_dir /tmp/profile "${PROFILE_CONFIG:-benchmarks/configs/deepseek-r1-distill-qwen-7b.json}" "$tok7b" &&
      rm -f /tmp/profile/out.jsonl /tmp/profile/kernels.txt &&  # batch never overwrites results; no stale table
      python3 -c "
import json
print(json.dumps({'prompt': list(range(1000, 1128)), 'max_tokens': 256, 'temperature': 0, 'ignore_eos': True}))" \
        >/tmp/profile/req.jsonl &&
      if [ -n "$nsys" ]; then
        $M -np 1 "$nsys" profile -o /tmp/profile/decode --force-overwrite true -t cuda,nvtx "${batch[@]}" \
          >"$out/profile.log" 2>&1 &&
        "$nsys" stats -q --report cuda_gpu_kern_sum --format table /tmp/profile/decode.nsys-rep \
          >"$out/profile.txt" 2>&1
      else
        # Twice: dependent launch off (each kernel's own time), then on as decode runs (a kernel
        # starts early and waits: its excl_ms column, how far it moves the timeline, is its cost).
        for pdl in ${PROFILE_PDL:-0 1}; do
          rm -f /tmp/profile/out.jsonl /tmp/profile/kernels.txt
          table=$out/profile.txt; [ $pdl = 1 ] && table=$out/profile_pdl.txt
          LOCKSTEP_DEPENDENT_LAUNCH=$pdl LOCKSTEP_KERNEL_PROFILE_SKIP_MS=${LOCKSTEP_KERNEL_PROFILE_SKIP_MS:-500} \
            $M -np 1 -x CUDA_INJECTION64_PATH="$kp" -x LOCKSTEP_DEPENDENT_LAUNCH \
            -x LOCKSTEP_KERNEL_PROFILE=/tmp/profile/kernels.txt -x LOCKSTEP_KERNEL_PROFILE_SKIP_MS "${batch[@]}" \
            >"$out/profile.log" 2>&1 && cp /tmp/profile/kernels.txt "$table" || break
        done
      fi
      step profile "rc=$?"; head -45 "$out/profile.txt"; [ -f "$out/profile_pdl.txt" ] && head -45 "$out/profile_pdl.txt" ;;
    peer)
      py=python3; [ -x /opt/torch/.venv/bin/python ] && py=/opt/torch/.venv/bin/python
      CUDA_VISIBLE_DEVICES=0 $py benchmarks/transformers_decode.py benchmarks/configs/deepseek-r1-distill-qwen-7b.json \
        "1 32" 128 256 >"$out/peer.txt" 2>&1
      step peer "rc=$?"; tail -4 "$out/peer.txt"
      # kernel_bench's prefill_attention rows, through PyTorch's SDPA backends.
      CUDA_VISIBLE_DEVICES=0 $py benchmarks/torch_attention.py >"$out/peer_attention.txt" 2>&1
      step "peer attention" "rc=$?"; grep -E '^prefill|^torch' "$out/peer_attention.txt" ;;
  esac
done
# GPU_CHECK_ARCHIVE=FILE.tgz: every output in one file (the device tool brings back only so many).
[ -n "${GPU_CHECK_ARCHIVE:-}" ] && tar czf "$GPU_CHECK_ARCHIVE" -C "$(dirname "$out")" "$(basename "$out")"
exit $status
