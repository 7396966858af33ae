// shardc CUDA host program: runs this rank's host program (device-<r>/program.txt) — constants
// from its safetensors shard, buffers from the memory plan, kernels on a compute stream through
// the generated launch table, collectives with NCCL (loaded by dlopen) on a comm stream, ordered
// by events: a kernel waits for a collective only when it touches a buffer slot the collective
// uses. Every collective has a deadline (SHARDC_COLLECTIVE_TIMEOUT_S or --timeout, default 600 s);
// past it the communicator is aborted and the process exits 3 naming rank, collective and
// sequence number.
//
// Launch: one process per GPU under mpirun (OMPI_COMM_WORLD_*) or torchrun-style variables
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); NCCL unique ids travel over a TCP
// rendezvous at MASTER_ADDR:MASTER_PORT. `--single-process` runs every rank of the mesh as a
// thread on one GPU with device-local collectives (tests, small machines).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "nccl_dl.h"
#include "shardc_runtime.h"

extern const shardc::DeviceEntry shardc_devices[];
extern const int shardc_device_count;

namespace shardc {

[[noreturn]] static void die(int code, const std::string& msg) {
  std::fprintf(stderr, "shardc: %s\n", msg.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}
static void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) die(2, what + ": " + cudaGetErrorString(e));
}

// ---- the copy/reduce kernel behind every collective's local part ----------------------------------
constexpr int MAX_GROUP = 16;
template <typename T>
struct Ins { const T* p[MAX_GROUP]; };

// out[o*out_stride + out_off + t] = reduce_j ins[j][o*in_stride + in_off + t] for o < outer, t < inner.
template <typename T>
__global__ void strided_reduce(T* out, Ins<T> ins, int n, long long outer, long long inner, long long in_stride, long long in_off,
                               long long out_stride, long long out_off, int op) {
  long long total = outer * inner;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {
    long long o = e / inner, t = e % inner;
    long long at = o * in_stride + in_off + t;
    T acc = ins.p[0][at];
    for (int j = 1; j < n; j++) {
      T x = ins.p[j][at];
      acc = op == 0 ? acc + x : op == 1 ? (x > acc ? x : acc) : (x < acc ? x : acc);
    }
    out[o * out_stride + out_off + t] = acc;
  }
}

static void launch_reduce(ElemType type, void* out, const std::vector<const void*>& ins, long long outer, long long inner, long long in_stride,
                          long long in_off, long long out_stride, long long out_off, int op, cudaStream_t s) {
  if (outer * inner == 0) return;
  unsigned grid = (unsigned)std::min<long long>((outer * inner + 255) / 256, 65535);
  auto go = [&](auto* typed) {
    using T = std::remove_pointer_t<decltype(typed)>;
    Ins<T> p{};
    for (size_t j = 0; j < ins.size(); j++) p.p[j] = static_cast<const T*>(ins[j]);
    strided_reduce<T><<<grid, 256, 0, s>>>(static_cast<T*>(out), p, (int)ins.size(), outer, inner, in_stride, in_off, out_stride, out_off, op);
  };
  if (type == ElemType::F32) go((float*)nullptr);
  else if (type == ElemType::I32) go((int*)nullptr);
  else go((unsigned*)nullptr);
  check(cudaGetLastError(), "collective copy kernel");
}

static long long prod(const std::vector<int64_t>& v, size_t from, size_t to) {
  long long n = 1;
  for (size_t k = from; k < to && k < v.size(); k++) n *= v[k];
  return n;
}

// ---- single-process mode: device-local collectives between rank threads -------------------------
struct LocalExchange {
  std::mutex mu;
  std::condition_variable cv;
  struct Slot { std::vector<const void*> in; std::vector<void*> out; int arrived = 0, done = 0; bool finished = false; };
  std::map<std::pair<std::vector<int>, long>, Slot> slots;
};

struct Options {
  std::string bundle, inputs, outputs;
  bool single = false;
  double timeout_s = 600;
};

class RankRun {
 public:
  RankRun(const Options& o, int rank, const DeviceEntry& entry, Program prog) : o_(o), rank_(rank), entry_(entry), p_(std::move(prog)) {}

  void setup() {
    check(cudaStreamCreateWithFlags(&compute_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaStreamCreateWithFlags(&comm_, cudaStreamNonBlocking), "cudaStreamCreate");
    for (size_t s = 0; s < p_.slot_bytes.size(); s++) {
      void* ptr = nullptr;
      check(cudaMalloc(&ptr, std::max<int64_t>(4, p_.slot_bytes[s])), "cudaMalloc slot " + std::to_string(s));
      check(cudaMemset(ptr, 0, std::max<int64_t>(4, p_.slot_bytes[s])), "cudaMemset");
      slots_.push_back(ptr);
    }
    pending_.assign(slots_.size(), nullptr);
    SafeTensors st = read_safetensors(o_.bundle + "/" + entry_.constants);
    for (auto& b : p_.buffers) {
      if (b.role != Role::Constant) continue;
      const SafeTensor* t = st.find("b" + std::to_string(b.id));
      if (!t || t->end - t->begin != (uint64_t)b.length * 4) die(1, std::string(entry_.constants) + ": constant b" + std::to_string(b.id) + " is missing or has the wrong size");
      check(cudaMemcpy(slots_[b.slot], st.data.data() + t->begin, t->end - t->begin, cudaMemcpyHostToDevice), "upload constants");
    }
    for (auto& in : p_.inputs) {
      const Buffer& b = p_.buffers[in.buffer];
      if (o_.inputs.empty()) continue;  // zeros
      std::string path = o_.inputs + "/" + std::to_string(rank_) + "." + sanitize(in.name) + ".bin";
      std::ifstream f(path, std::ios::binary);
      if (!f) die(1, "rank " + std::to_string(rank_) + ": missing input file " + path);
      std::vector<char> bytes((size_t)b.length * 4);
      if (!f.read(bytes.data(), (std::streamsize)bytes.size())) die(1, path + ": expected " + std::to_string(bytes.size()) + " bytes (" + elem_name(b.type) + ")");
      check(cudaMemcpy(slots_[b.slot], bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "upload input");
    }
  }

  static std::string sanitize(const std::string& json) {
    std::string s;
    for (char c : json) if (isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.') s += c;
    return s.empty() ? "t" : s;
  }

  void* ptr(int buffer) { return slots_[p_.buffers[buffer].slot]; }

  // Compute must see a collective's effects before touching its slots.
  void wait_slot(int buffer) {
    int s = p_.buffers[buffer].slot;
    if (pending_[s]) {
      wait_collective(pending_seq_[s]);
      check(cudaStreamWaitEvent(compute_, pending_[s], 0), "cudaStreamWaitEvent");
    }
  }

  void wait_collective(long seq) {
    auto& ev = done_.at(seq);
    if (ev.second) return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.timeout_s);
    while (true) {
      cudaError_t q = cudaEventQuery(ev.first);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) check(q, "collective");
      if (comm) {
        ncclResult_t r = ncclSuccess;
        nccl->CommGetAsyncError(comm_of(seq), &r);
        if (r != ncclSuccess && r != ncclInProgress) abort_with(seq, std::string("failed: ") + nccl->GetErrorString(r));
      }
      if (std::chrono::steady_clock::now() > deadline) abort_with(seq, "timed out after " + std::to_string((int)o_.timeout_s) + " s (a peer failed or hangs)");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    ev.second = true;
  }

  [[noreturn]] void abort_with(long seq, const std::string& why) {
    const Step& s = p_.steps[coll_step_.at(seq)];
    if (comm) for (auto& c : comms_) nccl->CommAbort(c.second);
    die(3, "rank " + std::to_string(rank_) + ": collective #" + std::to_string(seq) + " " + op_name(s.c.op) + " (node " + s.node + ") " + why);
  }

  static const char* op_name(CollOp op) { return op == CollOp::AllReduce ? "AllReduce" : op == CollOp::AllGather ? "AllGather" : "ReduceScatter"; }

  ncclComm_t comm_of(long seq) { return comms_.at(p_.steps[coll_step_.at(seq)].c.group); }

  void run(LocalExchange* local) {
    long seq = 0;
    for (size_t i = 0; i < p_.steps.size(); i++) {
      const Step& s = p_.steps[i];
      if (!s.is_collective) {
        const Dispatch& d = s.d;
        if (d.kernel < 0 || d.kernel >= entry_.launcher_count) die(2, "kernel index out of range in " + std::string(entry_.program));
        std::vector<void*> bufs;
        for (int b : d.bindings) { wait_slot(b); bufs.push_back(ptr(b)); }
        entry_.launchers[d.kernel](d.params.data(), bufs.data(), d.grid, d.block, compute_);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) die(2, "rank " + std::to_string(rank_) + ": launching node " + s.node + ": " + cudaGetErrorString(e));
        continue;
      }
      coll_step_[seq] = i;
      if (local) run_local(s, seq, *local);
      else run_nccl(s, seq);
      seq++;
    }
    for (auto& d : done_) wait_collective(d.first);
    check(cudaStreamSynchronize(compute_), "rank " + std::to_string(rank_) + ": running the program");
    check(cudaStreamSynchronize(comm_), "rank " + std::to_string(rank_) + ": collectives");
  }

  int index_in_group(const std::vector<int>& g) const {
    for (size_t k = 0; k < g.size(); k++) if (g[k] == rank_) return (int)k;
    die(2, "rank not in its collective group");
  }

  void run_nccl(const Step& s, long seq) {
    const Collective& c = s.c;
    cudaEvent_t ready, done;
    check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    if (c.input >= 0) wait_slot(c.input);
    wait_slot(c.output);
    check(cudaEventRecord(ready, compute_), "cudaEventRecord");
    check(cudaStreamWaitEvent(comm_, ready, 0), "cudaStreamWaitEvent");
    ncclComm_t comm = comms_.at(c.group);
    ncclDataType_t dt = c.type == ElemType::F32 ? ncclFloat32 : c.type == ElemType::I32 ? ncclInt32 : ncclUint32;
    ncclRedOp_t op = c.reduce == Reduce::Sum ? ncclSum : c.reduce == Reduce::Max ? ncclMax : ncclMin;
    const int g = (int)c.group.size();
    const size_t n_in = (size_t)prod(c.in_shape, 0, c.in_shape.size()), n_out = (size_t)prod(c.out_shape, 0, c.out_shape.size());
    ncclResult_t r = ncclSuccess;
    if (c.op == CollOp::AllReduce) {
      r = nccl->AllReduce(ptr(c.input), ptr(c.output), n_out, dt, op, comm, comm_);
    } else if (c.op == CollOp::AllGather) {
      const long long outer = prod(c.in_shape, 0, c.dim), K = prod(c.in_shape, c.dim, c.in_shape.size());
      void* tmp = scratch(n_out * 4);
      r = nccl->AllGather(ptr(c.input), tmp, n_in, dt, comm, comm_);
      for (int j = 0; j < g; j++)
        launch_reduce(c.type, ptr(c.output), {(const char*)tmp + j * outer * K * 4}, outer, K, K, 0, g * K, j * K, 0, comm_);
    } else {
      const long long outer = prod(c.out_shape, 0, c.dim), Kc = prod(c.out_shape, c.dim, c.out_shape.size());
      void* tmp = scratch(n_in * 4);
      for (int j = 0; j < g; j++)
        launch_reduce(c.type, (char*)tmp + j * outer * Kc * 4, {ptr(c.input)}, outer, Kc, g * Kc, j * Kc, Kc, 0, 0, comm_);
      r = nccl->ReduceScatter(tmp, ptr(c.output), n_out, dt, op, comm, comm_);
    }
    if (r != ncclSuccess && r != ncclInProgress) { coll_step_[seq] = &s - p_.steps.data(); abort_with(seq, std::string("failed to start: ") + nccl->GetErrorString(r)); }
    check(cudaEventRecord(done, comm_), "cudaEventRecord");
    done_[seq] = {done, false};
    if (c.input >= 0) mark(c.input, done, seq);
    mark(c.output, done, seq);
  }

  void mark(int buffer, cudaEvent_t ev, long seq) {
    int s = p_.buffers[buffer].slot;
    pending_[s] = ev;
    pending_seq_[s] = seq;
  }

  void* scratch(size_t bytes) {
    if (bytes > scratch_bytes_) {
      check(cudaStreamSynchronize(comm_), "collective scratch");
      if (scratch_) cudaFree(scratch_);
      check(cudaMalloc(&scratch_, bytes), "cudaMalloc collective scratch");
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  // Device-local collective: every member syncs its compute stream and posts its pointers; the
  // last to arrive runs the copy/reduce kernels for the whole group.
  void run_local(const Step& s, long seq, LocalExchange& x) {
    const Collective& c = s.c;
    check(cudaStreamSynchronize(compute_), "rank " + std::to_string(rank_) + ": before collective");
    const int g = (int)c.group.size();
    if (g > MAX_GROUP) die(2, "single-process collectives support groups of at most 16");
    const int me = index_in_group(c.group);
    std::unique_lock<std::mutex> lock(x.mu);
    auto& slot = x.slots[{c.group, seq}];
    if (slot.in.empty()) { slot.in.assign(g, nullptr); slot.out.assign(g, nullptr); }
    slot.in[me] = c.input >= 0 ? ptr(c.input) : nullptr;
    slot.out[me] = ptr(c.output);
    if (++slot.arrived == g) {
      for (int r = 0; r < g; r++) {
        if (c.op == CollOp::AllReduce) {
          launch_reduce(c.type, slot.out[r], slot.in, 1, prod(c.out_shape, 0, c.out_shape.size()), 0, 0, 0, 0, (int)c.reduce, comm_);
        } else if (c.op == CollOp::AllGather) {
          const long long outer = prod(c.in_shape, 0, c.dim), K = prod(c.in_shape, c.dim, c.in_shape.size());
          for (int j = 0; j < g; j++) launch_reduce(c.type, slot.out[r], {slot.in[j]}, outer, K, K, 0, g * K, j * K, 0, comm_);
        } else {
          const long long outer = prod(c.out_shape, 0, c.dim), Kc = prod(c.out_shape, c.dim, c.out_shape.size());
          launch_reduce(c.type, slot.out[r], slot.in, outer, Kc, g * Kc, r * Kc, Kc, 0, (int)c.reduce, comm_);
        }
      }
      check(cudaStreamSynchronize(comm_), "single-process collective");
      slot.finished = true;
      x.cv.notify_all();
    } else {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.timeout_s);
      if (!x.cv.wait_until(lock, deadline, [&] { return slot.finished; })) {
        coll_step_[seq] = &s - p_.steps.data();
        abort_with(seq, "timed out after " + std::to_string((int)o_.timeout_s) + " s waiting for the other ranks");
      }
    }
    if (++slot.done == g) x.slots.erase({c.group, seq});
  }

  void write_outputs() {
    if (o_.outputs.empty()) {
      for (auto& out : p_.outputs) {
        const Buffer& b = p_.buffers[out.buffer];
        std::vector<float> h((size_t)b.length);
        check(cudaMemcpy(h.data(), ptr(out.buffer), h.size() * 4, cudaMemcpyDeviceToHost), "download");
        double sum = 0;
        for (size_t k = 0; k < h.size(); k++) sum += b.type == ElemType::F32 ? h[k] : (double)((int*)h.data())[k];
        std::printf("rank %d output %s: %lld elements, sum %.6g\n", rank_, out.name.c_str(), (long long)b.length, sum);
      }
      return;
    }
    for (auto& out : p_.outputs) {
      const Buffer& b = p_.buffers[out.buffer];
      std::vector<char> h((size_t)b.length * 4);
      check(cudaMemcpy(h.data(), ptr(out.buffer), h.size(), cudaMemcpyDeviceToHost), "download");
      std::string path = o_.outputs + "/" + std::to_string(rank_) + "." + sanitize(out.name) + ".bin";
      std::ofstream f(path, std::ios::binary);
      if (!f.write(h.data(), (std::streamsize)h.size())) die(1, "cannot write " + path);
    }
  }

  Nccl* nccl = nullptr;
  bool comm = false;
  std::map<std::vector<int>, ncclComm_t> comms_;

 private:
  const Options& o_;
  int rank_;
  const DeviceEntry& entry_;
  Program p_;
  cudaStream_t compute_{}, comm_{};
  std::vector<void*> slots_;
  std::vector<cudaEvent_t> pending_;
  std::map<int, long> pending_seq_;
  std::map<long, std::pair<cudaEvent_t, bool>> done_;
  std::map<long, size_t> coll_step_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

static const char* getenv_c(const char* n) { return std::getenv(n); }

int run_main(int argc, char** argv) {
  Options o;
#ifdef SHARDC_BUNDLE_DIR
  o.bundle = SHARDC_BUNDLE_DIR;
#endif
  if (const char* b = std::getenv("SHARDC_BUNDLE")) o.bundle = b;
  try {
    o.timeout_s = collective_timeout_s(getenv_c);
  } catch (const std::exception& e) { die(1, e.what()); }
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string { if (i + 1 >= argc) die(1, a + " needs a value"); return argv[++i]; };
    if (a == "--bundle") o.bundle = val();
    else if (a == "--inputs") o.inputs = val();
    else if (a == "--outputs") o.outputs = val();
    else if (a == "--single-process") o.single = true;
    else if (a == "--timeout") { std::string v = val(); char* end; o.timeout_s = std::strtod(v.c_str(), &end); if (*end || !(o.timeout_s > 0)) die(1, "--timeout needs a positive number of seconds"); }
    else if (a == "--help" || a == "-h") {
      std::printf("usage: %s [--bundle DIR] [--inputs DIR] [--outputs DIR] [--single-process] [--timeout SECONDS]\n"
                  "  inputs/outputs are raw little-endian files <rank>.<tensor>.bin (int64 as int32, bool as uint32)\n", argv[0]);
      return 0;
    } else die(1, "unknown argument " + a + " (see --help)");
  }
  LaunchEnv env;
  try { env = read_launch_env(getenv_c); } catch (const std::exception& e) { die(1, e.what()); }
  if (!o.single && env.world != shardc_device_count)
    die(1, "the bundle has " + std::to_string(shardc_device_count) + " devices but the launcher started " + std::to_string(env.world) +
               " processes (" + env.source + "); start one process per device, or use --single-process");
  // Read every program first: bad bundles fail before any GPU work.
  std::vector<Program> programs;
  try {
    for (int r = 0; r < shardc_device_count; r++) programs.push_back(read_program(o.bundle + "/" + shardc_devices[r].program));
  } catch (const std::exception& e) { die(1, e.what()); }

  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    die(1, std::string("no CUDA device available (cudaGetDeviceCount: ") + (e == cudaSuccess ? "0 devices" : cudaGetErrorString(e)) + ")");

  if (o.single) {
    check(cudaSetDevice(0), "cudaSetDevice");
    LocalExchange x;
    std::vector<std::unique_ptr<RankRun>> ranks;
    for (int r = 0; r < shardc_device_count; r++) ranks.emplace_back(new RankRun(o, r, shardc_devices[r], programs[r]));
    try { for (auto& r : ranks) r->setup(); } catch (const std::exception& ex) { die(1, ex.what()); }
    std::vector<std::thread> threads;
    for (auto& r : ranks) threads.emplace_back([&, rr = r.get()] { check(cudaSetDevice(0), "cudaSetDevice"); rr->run(&x); });
    for (auto& t : threads) t.join();
    for (auto& r : ranks) r->write_outputs();
    return 0;
  }

  check(cudaSetDevice(env.local_rank % count), "cudaSetDevice");
  std::string err;
  Nccl* nccl = env.world > 1 ? load_nccl(err) : nullptr;
  if (env.world > 1 && !nccl) die(1, err);
  RankRun run(o, env.rank, shardc_devices[env.rank], programs[env.rank]);
  try { run.setup(); } catch (const std::exception& ex) { die(1, ex.what()); }
  if (nccl) {
    // Every process reads every program, so all agree on the distinct groups and their order.
    std::vector<std::vector<int>> groups;
    for (auto& p : programs) for (auto& s : p.steps) if (s.is_collective && std::find(groups.begin(), groups.end(), s.c.group) == groups.end()) groups.push_back(s.c.group);
    std::sort(groups.begin(), groups.end());
    std::vector<uint8_t> ids(groups.size() * sizeof(ncclUniqueId));
    if (env.rank == 0)
      for (size_t k = 0; k < groups.size(); k++) {
        ncclUniqueId id;
        if (nccl->GetUniqueId(&id) != ncclSuccess) die(1, "ncclGetUniqueId failed");
        std::memcpy(ids.data() + k * sizeof id, &id, sizeof id);
      }
    try { rendezvous_broadcast(env, ids, o.timeout_s); } catch (const std::exception& ex) { die(1, "rank " + std::to_string(env.rank) + ": " + ex.what()); }
    for (size_t k = 0; k < groups.size(); k++) {
      auto& g = groups[k];
      auto at = std::find(g.begin(), g.end(), env.rank);
      if (at == g.end()) continue;
      ncclUniqueId id;
      std::memcpy(&id, ids.data() + k * sizeof id, sizeof id);
      ncclComm_t c;
      ncclResult_t r = nccl->CommInitRank(&c, (int)g.size(), id, (int)(at - g.begin()));
      if (r != ncclSuccess) die(1, "rank " + std::to_string(env.rank) + ": ncclCommInitRank: " + nccl->GetErrorString(r));
      run.comms_[g] = c;
    }
    run.nccl = nccl;
    run.comm = true;
  }
  run.run(nullptr);
  run.write_outputs();
  return 0;
}

}  // namespace shardc

int main(int argc, char** argv) { return shardc::run_main(argc, argv); }
