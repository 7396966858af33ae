// Host-only checks of the shardc CUDA runtime (no GPU, no NCCL needed): reads every device's
// program.txt and constants.safetensors of a bundle, parses launcher environments, runs the TCP
// rendezvous between two threads, checks the message for a missing NCCL, the collective watchdog
// (fake clock and fake NCCL function table) and the AllToAll pack/unpack arithmetic (host copies
// compared with the definition). Exit 0 when all pass.
//   shardc_runtime_selftest <bundle dir> <devices>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "nccl_dl.h"
#include "shardc_runtime.h"

using namespace shardc;

static int failures = 0;
#define CHECK(cond, msg) do { if (!(cond)) { std::fprintf(stderr, "FAIL: %s\n", msg); failures++; } } while (0)

static std::map<std::string, std::string> fake_env;
static const char* fake_get(const char* name) {
  auto it = fake_env.find(name);
  return it == fake_env.end() ? nullptr : it->second.c_str();
}

// ---- fakes for the watchdog --------------------------------------------------------------------
static double fake_clock = 0;
static ncclResult_t fake_async = ncclSuccess;
static std::vector<ncclComm_t> aborted;
static ncclResult_t fake_get_async(ncclComm_t, ncclResult_t* r) { *r = fake_async; return ncclSuccess; }
static ncclResult_t fake_abort(ncclComm_t c) { aborted.push_back(c); return ncclSuccess; }
static const char* fake_error_string(ncclResult_t r) { return r == 6 ? "remote process exited or there was a network error" : "unhandled error"; }

static void watchdog_checks() {
  Nccl fake;
  fake.CommGetAsyncError = fake_get_async;
  fake.CommAbort = fake_abort;
  fake.GetErrorString = fake_error_string;
  ncclComm_t c0 = reinterpret_cast<ncclComm_t>(0x10), c1 = reinterpret_cast<ncclComm_t>(0x20);
  std::vector<std::string> failures_seen;
  auto make = [&](double timeout) {
    return new Watchdog(3, timeout, &fake, {[] { return fake_clock; }, [&](const std::string& m) { failures_seen.push_back(m); }});
  };
  // 1. Completed collectives retire; pending ones within the deadline are fine.
  fake_clock = 100;
  Watchdog::State st0 = Watchdog::State::Pending, st1 = Watchdog::State::Pending;
  Watchdog* w = make(10);
  w->add_comm(c0); w->add_comm(c1);
  w->enqueue(0, CollOp::AllReduce, "\"AllReduce_tp_0\"", c0, [&] { return st0; });
  w->enqueue(1, CollOp::AllToAll, "\"AllToAll_ep_1\"", c1, [&] { return st1; });
  fake_clock = 105;
  CHECK(w->check().empty() && w->in_flight() == 2, "nothing fails before the deadline");
  st0 = Watchdog::State::Done;
  CHECK(w->check().empty() && w->in_flight() == 1, "a completed collective retires");
  // 2. Past the deadline (the host could be blocked anywhere): abort every communicator, name
  //    rank, collective and sequence number.
  fake_clock = 111.5;
  std::string msg = w->check();
  CHECK(msg.find("rank 3: collective #1 AllToAll (node \"AllToAll_ep_1\") timed out after 10 s") == 0, "timeout message names rank, collective, sequence number");
  CHECK(failures_seen.size() == 1 && failures_seen[0] == msg, "fail hook called once with the message");
  CHECK(aborted.size() == 2 && aborted[0] == c0 && aborted[1] == c1, "every communicator aborted on timeout");
  CHECK(w->check().empty() && failures_seen.size() == 1, "a failed watchdog reports once");
  delete w;
  std::printf("watchdog timeout: %s\n", msg.c_str());
  // 3. A peer's failure is seen through ncclCommGetAsyncError before the deadline.
  failures_seen.clear(); aborted.clear();
  fake_clock = 0;
  w = make(600);
  w->add_comm(c0);
  w->enqueue(7, CollOp::Send, "\"Send_mb1\"", c0, [] { return Watchdog::State::Pending; });
  fake_clock = 1;
  CHECK(w->check().empty(), "no error, no failure");
  fake_async = 6;  // ncclRemoteError
  msg = w->check();
  CHECK(msg.find("rank 3: collective #7 Send (node \"Send_mb1\") failed: remote process exited") == 0, "async NCCL error names the collective");
  CHECK(aborted.size() == 1, "communicator aborted on a peer's failure");
  fake_async = ncclSuccess;
  delete w;
  // 4. The thread: a collective that never completes fails within a few periods of its deadline,
  //    while the caller waits elsewhere.
  failures_seen.clear(); aborted.clear();
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  Watchdog live(0, 0.05, &fake, {[] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); },
                                [&](const std::string&) { std::lock_guard<std::mutex> l(mu); fired = true; cv.notify_all(); }});
  live.add_comm(c0);
  live.enqueue(0, CollOp::Recv, "\"Recv_mb0\"", c0, [] { return Watchdog::State::Pending; });
  live.start(0.01);
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, std::chrono::seconds(10), [&] { return fired; });
  }
  live.stop();
  CHECK(fired && aborted.size() == 1, "the watchdog thread fires while the host waits");
}

// AllToAll: members' inputs [2, 4, 3] (from_dim 0, to_dim 1) over 2 members; the pack/unpack copies
// run on host arrays must give the CPU runtime's definition.
static void alltoall_checks() {
  Collective c;
  c.op = CollOp::AllToAll;
  c.group = {0, 1};
  c.in_shape = {2, 4, 3};
  c.out_shape = {4, 2, 3};
  c.args = {0, 1, 1};
  const int k = 2;
  auto run = [](const StridedCopy& s, const float* src, float* dst) {
    for (long long o = 0; o < s.outer; o++)
      for (long long t = 0; t < s.inner; t++) dst[o * s.dst_stride + s.dst_off + t] = src[o * s.src_stride + s.src_off + t];
  };
  std::vector<std::vector<float>> in(k, std::vector<float>(24));
  for (int m = 0; m < k; m++) for (int e = 0; e < 24; e++) in[m][e] = (float)(m * 100 + e);
  const long long B = alltoall_block(c);
  CHECK(B == 12, "AllToAll block size");
  bool ok = true;
  for (int j = 0; j < k; j++) {
    std::vector<float> out(24, -1), packed(B);
    for (int m = 0; m < k; m++) {
      run(alltoall_pack(c, j), in[m].data(), packed.data());
      run(alltoall_unpack(c, m), packed.data(), out.data());
    }
    // out[m*2 + a][b][d] = in[m][a][j*2 + b][d]
    for (int m = 0; m < k; m++) for (int a = 0; a < 2; a++) for (int b = 0; b < 2; b++) for (int d = 0; d < 3; d++)
      ok = ok && out[((m * 2 + a) * 2 + b) * 3 + d] == in[m][(a * 4 + j * 2 + b) * 3 + d];
  }
  CHECK(ok, "AllToAll pack/unpack equals the definition");
}

int main(int argc, char** argv) {
  if (argc != 3) { std::fprintf(stderr, "usage: %s <bundle dir> <devices>\n", argv[0]); return 2; }
  const std::string bundle = argv[1];
  const int devices = std::atoi(argv[2]);
  for (int r = 0; r < devices; r++) {
    try {
      std::string dir = bundle + "/device-" + std::to_string(r);
      Program p = read_program(dir + "/program.txt");
      SafeTensors st = read_safetensors(dir + "/constants.safetensors");
      int dispatches = 0, collectives = 0, constants = 0;
      std::map<std::string, int> ops;
      for (auto& s : p.steps) {
        (s.is_collective ? collectives : dispatches)++;
        if (s.is_collective) ops[coll_name(s.c.op)]++;
      }
      for (auto& b : p.buffers)
        if (b.role == Role::Constant) {
          constants++;
          const SafeTensor* t = st.find("b" + std::to_string(b.id));
          CHECK(t && t->end - t->begin == (uint64_t)b.length * elem_bytes(b.type), "constant present with its size");
        }
      CHECK(p.device == r, "program device number");
      std::string by;
      for (auto& o : ops) by += (by.empty() ? " (" : ", ") + o.first + " " + std::to_string(o.second);
      std::printf("device %d: %zu slots, %zu buffers (%d constants), %d dispatches, %d collectives%s\n", r, p.slot_bytes.size(), p.buffers.size(), constants, dispatches,
                  collectives, by.empty() ? "" : (by + ")").c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAIL: %s\n", e.what());
      failures++;
    }
  }
  try {
    read_program(bundle + "/CMakeLists.txt");
    CHECK(false, "a non-program is rejected");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("not a shardc host program") != std::string::npos, "clear message for a non-program");
  }

  fake_env = {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"}};
  LaunchEnv e = read_launch_env(fake_get);
  CHECK(e.rank == 1 && e.world == 4 && e.local_rank == 1 && e.source == "mpirun" && e.master_addr == "node0" && e.master_port == 29500, "mpirun environment");
  fake_env = {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_PORT", "1234"}};
  e = read_launch_env(fake_get);
  CHECK(e.rank == 3 && e.world == 8 && e.local_rank == 1 && e.source == "torchrun" && e.master_port == 1234, "torchrun environment");
  fake_env = {{"RANK", "2"}, {"WORLD_SIZE", "2"}};
  try { read_launch_env(fake_get); CHECK(false, "rank >= world rejected"); } catch (const std::runtime_error&) {}
  fake_env = {{"RANK", "x"}};
  try { read_launch_env(fake_get); CHECK(false, "bad RANK rejected"); } catch (const std::runtime_error& ex) { CHECK(std::string(ex.what()).find("RANK='x'") != std::string::npos, "bad RANK named"); }
  fake_env = {};
  CHECK(collective_timeout_s(fake_get) == 600.0, "default timeout 600 s");
  fake_env = {{"SHARDC_COLLECTIVE_TIMEOUT_S", "2.5"}};
  CHECK(collective_timeout_s(fake_get) == 2.5, "timeout from the environment");

  // Rendezvous: rank 0 hands a 128-byte id to rank 1 over localhost.
  LaunchEnv r0, r1;
  r0.world = r1.world = 2; r1.rank = 1;
  r0.master_port = r1.master_port = 20000 + (int)(std::rand() % 20000);
  std::vector<uint8_t> sent(128), got;
  for (int k = 0; k < 128; k++) sent[k] = (uint8_t)(k * 7 + 1);
  std::string err0;
  std::thread t0([&] { try { rendezvous_broadcast(r0, sent, 10); } catch (const std::exception& ex) { err0 = ex.what(); } });
  try { rendezvous_broadcast(r1, got, 10); } catch (const std::exception& ex) { std::fprintf(stderr, "FAIL: rendezvous: %s\n", ex.what()); failures++; }
  t0.join();
  CHECK(err0.empty() && got == sent, "rendezvous delivers the unique id");
  // A peer that never comes: rank 1 gives up with a clear message.
  LaunchEnv lonely = r1;
  lonely.master_port = r0.master_port + 1;
  try { std::vector<uint8_t> id; rendezvous_broadcast(lonely, id, 0.5); CHECK(false, "rendezvous times out"); }
  catch (const std::runtime_error& ex) { CHECK(std::string(ex.what()).find("timed out") != std::string::npos, "rendezvous timeout message"); }

  watchdog_checks();
  alltoall_checks();

  setenv("SHARDC_NCCL_LIBRARY", "libnccl-missing-for-test.so.2", 1);
  std::string why;
  Nccl* n = load_nccl(why);
  CHECK(n == nullptr && why.find("cannot load NCCL") != std::string::npos && why.find("--single-process") != std::string::npos, "missing NCCL message");
  std::printf("missing NCCL: %s\n", why.c_str());
  if (failures) { std::fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
  std::printf("runtime selftest ok\n");
  return 0;
}
