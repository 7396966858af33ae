// Loads NCCL with dlopen and resolves the functions of nccl_dl.h; a missing library or symbol is
// reported as a message (the caller exits with it), never a crash.
#include "nccl_dl.h"

#include <dlfcn.h>

#include <cstdlib>
#include <type_traits>

#include "shardc_runtime.h"

namespace shardc {

Nccl* load_nccl(std::string& error) {
  const char* path = std::getenv("SHARDC_NCCL_LIBRARY");
  if (!path || !*path) path = "libnccl.so.2";
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    error = std::string("cannot load NCCL (") + path + "): " + (why ? why : "not found") +
            "; install NCCL 2 (e.g. apt-get install libnccl2, or pip install nvidia-nccl-cu12 and point "
            "SHARDC_NCCL_LIBRARY at its libnccl.so.2), or run all ranks in one process with --single-process";
    return nullptr;
  }
  Nccl* n = new Nccl();
  n->lib = lib;
  bool ok = true;
  auto sym = [&](auto& f, const char* name) {
    f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(lib, name));
    if (!f) { ok = false; error += std::string(error.empty() ? "" : ", ") + name; }
  };
  sym(n->GetUniqueId, "ncclGetUniqueId");
  sym(n->CommInitRank, "ncclCommInitRank");
  sym(n->AllReduce, "ncclAllReduce");
  sym(n->AllGather, "ncclAllGather");
  sym(n->ReduceScatter, "ncclReduceScatter");
  sym(n->Broadcast, "ncclBroadcast");
  sym(n->Send, "ncclSend");
  sym(n->Recv, "ncclRecv");
  sym(n->GroupStart, "ncclGroupStart");
  sym(n->GroupEnd, "ncclGroupEnd");
  sym(n->CommAbort, "ncclCommAbort");
  sym(n->CommGetAsyncError, "ncclCommGetAsyncError");
  sym(n->GetErrorString, "ncclGetErrorString");
  if (!ok) {
    error = std::string(path) + " lacks NCCL functions: " + error;
    dlclose(lib);
    delete n;
    return nullptr;
  }
  return n;
}

}  // namespace shardc
