// NCCL loaded at run time (dlopen "libnccl.so.2"): the few types and functions shardc uses,
// declared here so a bundle builds without NCCL headers or libraries. Values follow nccl.h (v2).
#pragma once
#include <cstddef>
#include <string>

namespace shardc {

typedef struct ncclComm* ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef int ncclResult_t;  // ncclSuccess = 0, ncclInProgress = 7
typedef int ncclDataType_t;  // ncclInt32 = 2, ncclUint32 = 3, ncclFloat32 = 7
typedef int ncclRedOp_t;     // ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3
constexpr ncclResult_t ncclSuccess = 0, ncclInProgress = 7;
constexpr ncclDataType_t ncclInt32 = 2, ncclUint32 = 3, ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9;
constexpr ncclRedOp_t ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3;

struct Nccl {
  void* lib = nullptr;
  ncclResult_t (*GetUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*AllReduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, void*) = nullptr;
  ncclResult_t (*AllGather)(const void*, void*, size_t, ncclDataType_t, ncclComm_t, void*) = nullptr;
  ncclResult_t (*ReduceScatter)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, void*) = nullptr;
  ncclResult_t (*Broadcast)(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, void*) = nullptr;
  ncclResult_t (*Send)(const void*, size_t, ncclDataType_t, int, ncclComm_t, void*) = nullptr;
  ncclResult_t (*Recv)(void*, size_t, ncclDataType_t, int, ncclComm_t, void*) = nullptr;
  ncclResult_t (*GroupStart)() = nullptr;
  ncclResult_t (*GroupEnd)() = nullptr;
  ncclResult_t (*CommAbort)(ncclComm_t) = nullptr;
  ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t*) = nullptr;
  const char* (*GetErrorString)(ncclResult_t) = nullptr;
};

}  // namespace shardc
