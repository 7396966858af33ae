// shardc CUDA host runtime: declarations shared by the generated sources of a bundle
// (device-<r>/kernels.cu launch tables, devices.cpp) and the runtime (host.cpp, main.cu).
// The host parts (program reading, safetensors, environment, rendezvous, NCCL loading) need no
// CUDA and are unit-tested by runtime_selftest.cpp on machines without a GPU.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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
enum class ElemType { F32 = 0, I32 = 1, U32 = 2 };
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

enum class CollOp { AllReduce = 0, AllGather = 1, ReduceScatter = 2 };
enum class Reduce { Sum = 0, Max = 1, Min = 2 };

struct Collective {
  CollOp op = CollOp::AllReduce;
  Reduce reduce = Reduce::Sum;
  int dim = 0;
  std::vector<int> group;  // mesh ranks, in axis order
  int input = -1, output = -1;
  ElemType type = ElemType::F32;
  std::vector<int64_t> in_shape, out_shape;
};

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

const char* elem_name(ElemType t);
size_t elem_bytes(ElemType t);

}  // namespace shardc
