// Host-only checks of the shardc CUDA runtime (no GPU, no NCCL needed): reads every device's
// program.txt and constants.safetensors of a bundle, parses launcher environments, runs the TCP
// rendezvous between two threads, and checks the message for a missing NCCL. Exit 0 when all pass.
//   shardc_runtime_selftest <bundle dir> <devices>
#include <cstdio>
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
      for (auto& s : p.steps) (s.is_collective ? collectives : dispatches)++;
      for (auto& b : p.buffers)
        if (b.role == Role::Constant) {
          constants++;
          const SafeTensor* t = st.find("b" + std::to_string(b.id));
          CHECK(t && t->end - t->begin == (uint64_t)b.length * 4, "constant present with its size");
        }
      CHECK(p.device == r, "program device number");
      std::printf("device %d: %zu slots, %zu buffers (%d constants), %d dispatches, %d collectives\n", r, p.slot_bytes.size(), p.buffers.size(), constants, dispatches, collectives);
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

  setenv("SHARDC_NCCL_LIBRARY", "libnccl-missing-for-test.so.2", 1);
  std::string why;
  Nccl* n = load_nccl(why);
  CHECK(n == nullptr && why.find("cannot load NCCL") != std::string::npos && why.find("--single-process") != std::string::npos, "missing NCCL message");
  std::printf("missing NCCL: %s\n", why.c_str());
  if (failures) { std::fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
  std::printf("runtime selftest ok\n");
  return 0;
}
