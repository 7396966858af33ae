// Host-side parts of the shardc CUDA runtime that need no GPU: reading the host program
// (program.txt) and the safetensors constants, the launch environment, the TCP rendezvous that
// hands NCCL's unique id from rank 0 to the others.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "shardc_runtime.h"

namespace shardc {

const char* coll_name(CollOp op) {
  static const char* const names[] = {"AllReduce", "AllGather", "ReduceScatter", "AllToAll", "Broadcast", "Send", "Recv"};
  return names[(int)op];
}

static long long prod_dims(const std::vector<int64_t>& v, size_t from, size_t to) {
  long long n = 1;
  for (size_t k = from; k < to && k < v.size(); k++) n *= v[k];
  return n;
}

long long alltoall_block(const Collective& c) {
  return prod_dims(c.in_shape, 0, c.in_shape.size()) / (long long)c.group.size();
}

StridedCopy alltoall_pack(const Collective& c, int j) {
  const int to = c.args[1];
  const long long k = (long long)c.group.size(), size = c.in_shape[to] / k, inner = prod_dims(c.in_shape, to + 1, c.in_shape.size());
  StridedCopy s;
  s.outer = prod_dims(c.in_shape, 0, to);
  s.inner = size * inner;
  s.src_stride = c.in_shape[to] * inner;
  s.src_off = j * size * inner;
  s.dst_stride = size * inner;
  return s;
}

StridedCopy alltoall_unpack(const Collective& c, int m) {
  const int from = c.args[0];
  const long long k = (long long)c.group.size(), part = c.in_shape[from], inner = prod_dims(c.out_shape, from + 1, c.out_shape.size());
  StridedCopy s;
  s.outer = prod_dims(c.out_shape, 0, from);
  s.inner = part * inner;
  s.src_stride = part * inner;
  s.dst_stride = k * part * inner;
  s.dst_off = m * part * inner;
  return s;
}

// ---- watchdog ---------------------------------------------------------------------------------
struct Watchdog::Thread {
  std::thread t;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
};

Watchdog::Watchdog(int rank, double timeout_s, const Nccl* nccl, Hooks hooks) : rank_(rank), timeout_s_(timeout_s), nccl_(nccl), hooks_(std::move(hooks)) {}
Watchdog::~Watchdog() { stop(); }

void Watchdog::enqueue(long seq, CollOp op, const std::string& node, ncclComm_t comm, std::function<State()> query) {
  std::lock_guard<std::mutex> lock(mu_);
  live_[seq] = Entry{seq, op, node, comm, hooks_.now(), std::move(query)};
}

void Watchdog::retire(long seq) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(seq);
}

void Watchdog::add_comm(ncclComm_t comm) {
  std::lock_guard<std::mutex> lock(mu_);
  comms_.push_back(comm);
}

size_t Watchdog::in_flight() {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

std::string Watchdog::check() {
  std::string msg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) return "";
    const double now = hooks_.now();
    for (auto it = live_.begin(); it != live_.end();) {
      const Entry& e = it->second;
      State st = e.query ? e.query() : State::Pending;
      if (st == State::Done) { it = live_.erase(it); continue; }
      std::string why;
      if (st == State::Error) why = "failed on the device";
      if (why.empty() && e.comm && nccl_ && nccl_->CommGetAsyncError) {
        ncclResult_t r = ncclSuccess;
        ncclResult_t q = nccl_->CommGetAsyncError(e.comm, &r);
        if (q != ncclSuccess) r = q;
        if (r != ncclSuccess && r != ncclInProgress)
          why = std::string("failed: ") + (nccl_->GetErrorString ? nccl_->GetErrorString(r) : "NCCL error") + " (a peer failed or the network broke)";
      }
      if (why.empty() && now - e.since > timeout_s_) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", timeout_s_);
        why = std::string("timed out after ") + buf + " s (a peer failed or hangs; SHARDC_COLLECTIVE_TIMEOUT_S or --timeout sets the limit)";
      }
      if (!why.empty()) {
        msg = "rank " + std::to_string(rank_) + ": collective #" + std::to_string(e.seq) + " " + coll_name(e.op) + " (node " + e.node + ") " + why;
        break;
      }
      ++it;
    }
    if (msg.empty()) return "";
    failed_ = true;
    if (nccl_ && nccl_->CommAbort) for (ncclComm_t c : comms_) nccl_->CommAbort(c);
  }
  hooks_.fail(msg);
  return msg;
}

void Watchdog::start(double period_s) {
  if (thread_) return;
  thread_ = new Thread();
  thread_->t = std::thread([this, period_s] {
    std::unique_lock<std::mutex> lock(thread_->mu);
    while (!thread_->stop) {
      thread_->cv.wait_for(lock, std::chrono::duration<double>(period_s));
      if (thread_->stop) break;
      lock.unlock();
      check();
      lock.lock();
    }
  });
}

void Watchdog::stop() {
  if (!thread_) return;
  {
    std::lock_guard<std::mutex> lock(thread_->mu);
    thread_->stop = true;
  }
  thread_->cv.notify_all();
  thread_->t.join();
  delete thread_;
  thread_ = nullptr;
}

const char* elem_name(ElemType t) {
  switch (t) {
    case ElemType::F32: return "f32";
    case ElemType::I32: return "i32";
    case ElemType::U32: return "u32";
    case ElemType::F16: return "f16";
    case ElemType::BF16: return "bf16";
  }
  return "?";
}
size_t elem_bytes(ElemType t) { return t == ElemType::F16 || t == ElemType::BF16 ? 2 : 4; }

static ElemType parse_type(const std::string& s, const std::string& where) {
  if (s == "f32") return ElemType::F32;
  if (s == "i32") return ElemType::I32;
  if (s == "u32") return ElemType::U32;
  if (s == "f16") return ElemType::F16;
  if (s == "bf16") return ElemType::BF16;
  throw std::runtime_error(where + ": unknown element type '" + s + "'");
}

Program read_program(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the host program");
  Program p;
  std::string line;
  int lineno = 0;
  bool header = false;
  while (std::getline(in, line)) {
    lineno++;
    if (line.empty() || line[0] == '#') continue;
    std::string rest;  // the text after a tab: a JSON-escaped name
    auto tab = line.find('\t');
    if (tab != std::string::npos) rest = line.substr(tab + 1), line = line.substr(0, tab);
    std::istringstream ls(line);
    std::string kw;
    ls >> kw;
    const std::string where = path + ":" + std::to_string(lineno);
    auto need = [&](bool ok) { if (!ok || ls.fail()) throw std::runtime_error(where + ": malformed '" + kw + "' line"); };
    auto ints = [&](std::vector<int64_t>& v) { size_t n; ls >> n; need(n < (1u << 20)); v.resize(n); for (auto& x : v) ls >> x; need(true); };
    if (kw == "shardc-host-program") {
      int version; ls >> version;
      need(true);
      if (version != 1) throw std::runtime_error(where + ": host program format " + std::to_string(version) + " (this runtime reads 1)");
      header = true;
    } else if (!header) {
      throw std::runtime_error(where + ": not a shardc host program (first line must be 'shardc-host-program 1')");
    } else if (kw == "device") {
      ls >> p.device; need(true);
    } else if (kw == "slot") {
      int64_t bytes; ls >> bytes; need(bytes >= 0); p.slot_bytes.push_back(bytes);
    } else if (kw == "buffer") {
      Buffer b; std::string type; int role;
      ls >> b.id >> type >> b.length >> role >> b.slot;
      need(b.id == (int)p.buffers.size() && role >= 0 && role <= 2 && b.slot >= 0 && b.slot < (int)p.slot_bytes.size());
      b.type = parse_type(type, where);
      b.role = (Role)role;
      if (b.length * (int64_t)elem_bytes(b.type) > p.slot_bytes[b.slot]) throw std::runtime_error(where + ": buffer larger than its slot");
      p.buffers.push_back(b);
    } else if (kw == "input" || kw == "output") {
      TensorRef t; std::string type;
      ls >> t.buffer >> type; need(t.buffer >= 0 && t.buffer < (int)p.buffers.size());
      t.type = parse_type(type, where);
      ints(t.shape);
      t.name = rest;
      (kw == "input" ? p.inputs : p.outputs).push_back(t);
    } else if (kw == "dispatch") {
      Step s; s.node = rest;
      ls >> s.d.kernel;
      for (auto& g : s.d.grid) ls >> g;
      for (auto& b : s.d.block) ls >> b;
      std::vector<int64_t> params, binds;
      ints(params); ints(binds);
      ls >> s.d.noutputs; need(s.d.noutputs >= 0 && s.d.noutputs <= (int)binds.size());
      for (auto v : params) s.d.params.push_back((int)v);
      for (auto v : binds) { need(v >= 0 && v < (int64_t)p.buffers.size()); s.d.bindings.push_back((int)v); }
      p.steps.push_back(std::move(s));
    } else if (kw == "collective") {
      Step s; s.is_collective = true; s.node = rest;
      std::string op, reduce, type; std::vector<int64_t> group;
      ls >> op >> reduce >> s.c.dim; need(true);
      ints(group);
      for (auto g : group) s.c.group.push_back((int)g);
      ls >> s.c.input >> s.c.output >> type; need(s.c.output >= 0 && s.c.output < (int)p.buffers.size() && s.c.input < (int)p.buffers.size());
      s.c.type = parse_type(type, where);
      ints(s.c.in_shape); ints(s.c.out_shape);
      std::vector<int64_t> args;
      if (ls >> std::ws, !ls.eof()) ints(args);
      for (auto a : args) s.c.args.push_back((int)a);
      static const char* const ops[] = {"AllReduce", "AllGather", "ReduceScatter", "AllToAll", "Broadcast", "Send", "Recv"};
      int found = -1;
      for (int k = 0; k < 7; k++) if (op == ops[k]) found = k;
      if (found < 0) throw std::runtime_error(where + ": collective " + op + " is not supported by this runtime");
      s.c.op = (CollOp)found;
      static const size_t nargs[] = {0, 1, 1, 3, 1, 2, 2};
      if (s.c.args.size() < nargs[found] && !(found <= 2 && s.c.args.empty())) throw std::runtime_error(where + ": " + op + " needs " + std::to_string(nargs[found]) + " arguments");
      if ((s.c.op == CollOp::Send || s.c.op == CollOp::Recv) && s.c.group.size() != 2) throw std::runtime_error(where + ": " + op + " needs a group of [sender, receiver]");
      if (s.c.op == CollOp::AllToAll && (s.c.args[0] < 0 || s.c.args[1] < 0 || s.c.args[0] >= (int)s.c.in_shape.size() || s.c.args[1] >= (int)s.c.in_shape.size() ||
                                         s.c.args[0] == s.c.args[1] || s.c.in_shape.size() != s.c.out_shape.size() || s.c.group.empty() ||
                                         s.c.in_shape[s.c.args[1]] % (int64_t)s.c.group.size() != 0))
        throw std::runtime_error(where + ": malformed AllToAll (dims, or blocks that do not divide evenly)");
      if (reduce == "sum") s.c.reduce = Reduce::Sum;
      else if (reduce == "max") s.c.reduce = Reduce::Max;
      else if (reduce == "min") s.c.reduce = Reduce::Min;
      else throw std::runtime_error(where + ": unknown reduction " + reduce);
      p.steps.push_back(std::move(s));
    } else {
      throw std::runtime_error(where + ": unknown line '" + kw + "'");
    }
  }
  if (!header) throw std::runtime_error(path + ": empty host program");
  return p;
}

// ---- a minimal JSON reader for the safetensors header ---------------------------------------------
namespace {
struct Json {
  const std::string& s;
  size_t i = 0;
  std::string where;
  [[noreturn]] void fail(const char* what) { throw std::runtime_error(where + ": bad safetensors header (" + what + ")"); }
  void ws() { while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) i++; }
  void expect(char c) { ws(); if (i >= s.size() || s[i] != c) fail("unexpected character"); i++; }
  bool peek(char c) { ws(); return i < s.size() && s[i] == c; }
  std::string str() {
    expect('"');
    std::string out;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') { if (++i >= s.size()) fail("escape"); out += s[i] == 'n' ? '\n' : s[i]; i++; }
      else out += s[i++];
    }
    expect('"');
    return out;
  }
  int64_t num() { ws(); size_t j = i; while (j < s.size() && (isdigit((unsigned char)s[j]) || s[j] == '-')) j++; if (j == i) fail("number"); int64_t v = std::stoll(s.substr(i, j - i)); i = j; return v; }
  std::vector<int64_t> nums() { std::vector<int64_t> v; expect('['); if (!peek(']')) do v.push_back(num()); while (peek(',') && (i++, true)); expect(']'); return v; }
  void skip() {  // any value
    ws();
    if (peek('{')) { i++; if (!peek('}')) do { str(); expect(':'); skip(); } while (peek(',') && (i++, true)); expect('}'); }
    else if (peek('[')) { i++; if (!peek(']')) do skip(); while (peek(',') && (i++, true)); expect(']'); }
    else if (peek('"')) str();
    else { while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']') i++; }
  }
};
}  // namespace

const SafeTensor* SafeTensors::find(const std::string& name) const {
  for (auto& t : tensors) if (t.name == name) return &t;
  return nullptr;
}

SafeTensors read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the weights file");
  uint8_t len8[8];
  if (!in.read((char*)len8, 8)) throw std::runtime_error(path + ": truncated safetensors file");
  uint64_t n = 0;
  for (int k = 7; k >= 0; k--) n = (n << 8) | len8[k];
  if (n > (1u << 28)) throw std::runtime_error(path + ": safetensors header too large");
  std::string header(n, '\0');
  if (!in.read(&header[0], (std::streamsize)n)) throw std::runtime_error(path + ": truncated safetensors header");
  SafeTensors st;
  st.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  Json j{header, 0, path};
  j.expect('{');
  if (!j.peek('}')) do {
    std::string name = j.str();
    j.expect(':');
    if (name == "__metadata__") { j.skip(); continue; }
    SafeTensor t; t.name = name;
    j.expect('{');
    do {
      std::string key = j.str(); j.expect(':');
      if (key == "dtype") t.dtype = j.str();
      else if (key == "shape") t.shape = j.nums();
      else if (key == "data_offsets") { auto o = j.nums(); if (o.size() != 2) j.fail("data_offsets"); t.begin = o[0]; t.end = o[1]; }
      else j.skip();
    } while (j.peek(',') && (j.i++, true));
    j.expect('}');
    if (t.end < t.begin || t.end > st.data.size()) throw std::runtime_error(path + ": tensor " + name + " lies outside the file");
    st.tensors.push_back(t);
  } while (j.peek(',') && (j.i++, true));
  j.expect('}');
  return st;
}

// ---- environment ----------------------------------------------------------------------------------
static int env_int(const char* (*get)(const char*), const char* name, int fallback, int lo) {
  const char* v = get(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end || x < lo || x > 1 << 30) throw std::runtime_error(std::string("environment variable ") + name + "='" + v + "' is not a valid number");
  return (int)x;
}

LaunchEnv read_launch_env(const char* (*get)(const char*)) {
  LaunchEnv e;
  if (get("OMPI_COMM_WORLD_RANK")) {
    e.source = "mpirun";
    e.rank = env_int(get, "OMPI_COMM_WORLD_RANK", 0, 0);
    e.world = env_int(get, "OMPI_COMM_WORLD_SIZE", 1, 1);
    e.local_rank = env_int(get, "OMPI_COMM_WORLD_LOCAL_RANK", e.rank, 0);
  } else if (get("RANK") || get("WORLD_SIZE")) {
    e.source = "torchrun";
    e.rank = env_int(get, "RANK", 0, 0);
    e.world = env_int(get, "WORLD_SIZE", 1, 1);
    e.local_rank = env_int(get, "LOCAL_RANK", e.rank, 0);
  } else {
    e.source = "default";
  }
  if (const char* a = get("MASTER_ADDR")) if (*a) e.master_addr = a;
  e.master_port = env_int(get, "MASTER_PORT", 29500, 1);
  if (e.master_port > 65535) throw std::runtime_error("MASTER_PORT must be at most 65535");
  if (e.rank >= e.world) throw std::runtime_error("rank " + std::to_string(e.rank) + " is not below the world size " + std::to_string(e.world));
  return e;
}

double collective_timeout_s(const char* (*get)(const char*)) {
  const char* v = get("SHARDC_COLLECTIVE_TIMEOUT_S");
  if (!v || !*v) return 600.0;
  char* end = nullptr;
  double t = std::strtod(v, &end);
  if (*end || !(t > 0)) throw std::runtime_error(std::string("SHARDC_COLLECTIVE_TIMEOUT_S='") + v + "' is not a positive number of seconds");
  return t;
}

// ---- rendezvous -------------------------------------------------------------------------------------
static bool send_all(int fd, const uint8_t* p, size_t n) { while (n) { ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL); if (k <= 0) return false; p += k; n -= (size_t)k; } return true; }
static bool recv_all(int fd, uint8_t* p, size_t n) { while (n) { ssize_t k = ::recv(fd, p, n, 0); if (k <= 0) return false; p += k; n -= (size_t)k; } return true; }

void rendezvous_broadcast(const LaunchEnv& env, std::vector<uint8_t>& id, double timeout_s) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(timeout_s);
  const std::string at = env.master_addr + ":" + std::to_string(env.master_port);
  if (env.world == 1) return;
  if (env.rank == 0) {
    int srv = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{}; a.sin_family = AF_INET; a.sin_port = htons((uint16_t)env.master_port); a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(srv, (sockaddr*)&a, sizeof a) != 0 || ::listen(srv, env.world) != 0) {
      ::close(srv);
      throw std::runtime_error("rank 0 cannot listen on port " + std::to_string(env.master_port) + " for the rendezvous: " + std::strerror(errno));
    }
    for (int k = 1; k < env.world; k++) {
      timeval tv{}; 
      double left = std::chrono::duration<double>(deadline - clock::now()).count();
      if (left <= 0) { ::close(srv); throw std::runtime_error("rendezvous timed out at " + at + ": " + std::to_string(k - 1) + " of " + std::to_string(env.world - 1) + " peers connected"); }
      tv.tv_sec = (long)left; tv.tv_usec = (long)((left - (long)left) * 1e6);
      ::setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      int c = ::accept(srv, nullptr, nullptr);
      if (c < 0) { ::close(srv); throw std::runtime_error("rendezvous timed out at " + at + ": " + std::to_string(k - 1) + " of " + std::to_string(env.world - 1) + " peers connected"); }
      uint32_t n = (uint32_t)id.size();
      bool ok = send_all(c, (uint8_t*)&n, 4) && send_all(c, id.data(), id.size());
      ::close(c);
      if (!ok) { ::close(srv); throw std::runtime_error("rendezvous: sending the unique id failed"); }
    }
    ::close(srv);
    return;
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET; hints.ai_socktype = SOCK_STREAM;
  if (::getaddrinfo(env.master_addr.c_str(), std::to_string(env.master_port).c_str(), &hints, &res) != 0 || !res)
    throw std::runtime_error("rendezvous: cannot resolve MASTER_ADDR " + env.master_addr);
  while (true) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      uint32_t n = 0;
      bool ok = recv_all(fd, (uint8_t*)&n, 4) && n <= 4096;
      if (ok) { id.assign(n, 0); ok = recv_all(fd, id.data(), n); }
      ::close(fd);
      ::freeaddrinfo(res);
      if (!ok) throw std::runtime_error("rendezvous: receiving the unique id from " + at + " failed");
      return;
    }
    ::close(fd);
    if (clock::now() > deadline) { ::freeaddrinfo(res); throw std::runtime_error("rendezvous timed out: rank 0 at " + at + " did not answer"); }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace shardc
