// shardc CUDA host runtime: declarations shared by the generated sources of a bundle
// (device-<r>/kernels.cu launch tables, devices.cpp) and the runtime (host.cpp, main.cu).
// The host parts (program reading, safetensors, environment, rendezvous, NCCL loading) need no
// CUDA and are unit-tested by runtime_selftest.cpp on machines without a GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "nccl_dl.h"

namespace shardc {

// Launches kernel `k` of a device: params (i32, kernel order), buffers (binding order), grid and
// block dims, and the cudaStream_t as void*.
using Launcher = void (*)(const int* params, void* const* buffers, const unsigned* grid, const unsigned* block, void* stream);

struct DeviceEntry {
  const char* program;    // bundle-relative path of device-<r>/program.txt
  const char* constants;  // bundle-relative path of device-<r>/constants.safetensors
  const Launcher* launchers;
  int launcher_count;
};

// ---- the host program (device-<r>/program.txt, written by src/bundle/cuda.ts) ----------------
// F16 / BF16: 2-byte float storage of float16 / bfloat16 tensors (kernels compute in f32).
enum class ElemType { F32 = 0, I32 = 1, U32 = 2, F16 = 3, BF16 = 4 };
enum class Role { Input = 0, Constant = 1, Temp = 2 };

struct Buffer {
  int id = 0;
  ElemType type = ElemType::F32;
  int64_t length = 0;
  Role role = Role::Temp;
  int slot = 0;
};

struct TensorRef {
  std::string name;
  int buffer = -1;
  ElemType type = ElemType::F32;
  std::vector<int64_t> shape;
};

struct Dispatch {
  int kernel = 0;
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  std::vector<int> params;
  std::vector<int> bindings;  // buffer ids, binding order
  int noutputs = 0;           // the last `noutputs` bindings are written
};

enum class CollOp { AllReduce = 0, AllGather = 1, ReduceScatter = 2, AllToAll = 3, Broadcast = 4, Send = 5, Recv = 6 };
const char* coll_name(CollOp op);
enum class Reduce { Sum = 0, Max = 1, Min = 2 };

struct Collective {
  CollOp op = CollOp::AllReduce;
  Reduce reduce = Reduce::Sum;
  int dim = 0;
  std::vector<int> group;  // mesh ranks, in axis order
  int input = -1, output = -1;
  ElemType type = ElemType::F32;
  std::vector<int64_t> in_shape, out_shape;
  // Per op: AllGather/ReduceScatter {unit}; AllToAll {from_dim, to_dim, unit}; Broadcast {root};
  // Send/Recv {peer mesh rank, tag} (group = {sender, receiver}).
  std::vector<int> args;
};

// AllToAll of equal blocks: member m's input x is split along to_dim into k blocks; block j goes to
// member j, which places the k blocks it receives (sender order) along from_dim. These are the
// pack/unpack copies around the exchange, as 2-level strided copies (outer rows of `inner`).
struct StridedCopy {
  long long outer = 0, inner = 0, src_stride = 0, src_off = 0, dst_stride = 0, dst_off = 0;
};
// Copy packing block j of the input into a contiguous send buffer (destination offset 0).
StridedCopy alltoall_pack(const Collective& c, int j);
// Copy placing the contiguous block received from member m into the output.
StridedCopy alltoall_unpack(const Collective& c, int m);
// Elements of one block (what each member sends to each other member).
long long alltoall_block(const Collective& c);

struct Step {
  bool is_collective = false;
  std::string node;  // JSON-escaped original node label (messages only)
  Dispatch d;
  Collective c;
};

struct Program {
  int device = 0;
  std::vector<int64_t> slot_bytes;
  std::vector<Buffer> buffers;
  std::vector<TensorRef> inputs, outputs;
  std::vector<Step> steps;
};

// Parses program.txt; throws std::runtime_error naming the file and line on malformed input.
Program read_program(const std::string& path);

// ---- safetensors (this rank's constants) -----------------------------------------------------
struct SafeTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into `data`
};
struct SafeTensors {
  std::vector<SafeTensor> tensors;
  std::vector<uint8_t> data;
  const SafeTensor* find(const std::string& name) const;
};
SafeTensors read_safetensors(const std::string& path);

// ---- launch environment ----------------------------------------------------------------------
struct LaunchEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source;  // "mpirun", "torchrun" or "default"
};
// Reads OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK} (mpirun) or RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/
// MASTER_PORT (torchrun style); `get` is getenv (injectable for tests). Throws on bad values.
LaunchEnv read_launch_env(const char* (*get)(const char*));
// SHARDC_COLLECTIVE_TIMEOUT_S (seconds, default 600).
double collective_timeout_s(const char* (*get)(const char*));

// ---- unique-id rendezvous over TCP ---------------------------------------------------------------
// Rank 0 listens on addr:port and sends `id` to world-1 peers; others connect (retrying until
// timeout_s) and receive it. Throws std::runtime_error on failure or timeout.
void rendezvous_broadcast(const LaunchEnv& env, std::vector<uint8_t>& id, double timeout_s);

// ---- NCCL, loaded at run time --------------------------------------------------------------------
struct Nccl;
// dlopen("libnccl.so.2") (or SHARDC_NCCL_LIBRARY); nullptr and `error` set when missing.
Nccl* load_nccl(std::string& error);

// ---- the collective watchdog ----------------------------------------------------------------
// Every collective in flight is registered with its communicator, enqueue time and a completion
// query; a watchdog thread checks them all every `period` seconds, whatever the host is doing
// (launching, waiting in cudaStreamSynchronize or in another collective). On an NCCL error of
// the communicator (ncclCommGetAsyncError) or once a collective is older than the timeout, it
// aborts every communicator of the process and calls `fail` with a message naming the rank, the
// collective and its sequence number (main.cu: print it and exit 3). Clock, NCCL table and
// `fail` are injectable, so runtime_selftest checks the logic without a GPU or NCCL.
class Watchdog {
 public:
  enum class State { Pending, Done, Error };
  struct Hooks {
    std::function<double()> now;                     // seconds, monotonic
    std::function<void(const std::string&)> fail;    // does not return in production
  };
  Watchdog(int rank, double timeout_s, const Nccl* nccl, Hooks hooks);
  ~Watchdog();
  // A collective was enqueued. `query` reports its progress (e.g. cudaEventQuery of its done event).
  void enqueue(long seq, CollOp op, const std::string& node, ncclComm_t comm, std::function<State()> query);
  // A collective the host saw complete.
  void retire(long seq);
  // Communicators to abort on failure (all of this process's).
  void add_comm(ncclComm_t comm);
  // One check of every collective in flight: completed ones are dropped; on a failure the
  // communicators are aborted, `fail` is called and its message returned ("" when all is well).
  std::string check();
  size_t in_flight();
  void start(double period_s);  // the watchdog thread
  void stop();

 private:
  struct Entry { long seq; CollOp op; std::string node; ncclComm_t comm; double since; std::function<State()> query; };
  int rank_;
  double timeout_s_;
  const Nccl* nccl_;
  Hooks hooks_;
  std::mutex mu_;
  std::map<long, Entry> live_;
  std::vector<ncclComm_t> comms_;
  bool failed_ = false;
  struct Thread;
  Thread* thread_ = nullptr;
};

const char* elem_name(ElemType t);
size_t elem_bytes(ElemType t);

}  // namespace shardc
