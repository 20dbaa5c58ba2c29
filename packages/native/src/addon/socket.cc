// Unix sockets for the daemon: listen/connect/accept, SCM_RIGHTS file-descriptor passing and
// SO_PEERCRED. Sockets are non-blocking; callers wait for readiness with the poll watcher.
#include "common.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstring>
#include <string>
#include <vector>

namespace viommu {

// The most descriptors one SCM_RIGHTS message may carry on Linux (SCM_MAX_FD).
static constexpr size_t kMaxFds = 253;

static bool UnixAddress(const Napi::Value& value, sockaddr_un* addr, socklen_t* len) {
  if (!value.IsString()) return false;
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

static Napi::Array Pair(Napi::Env env, int a, int b) {
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, a);
  pair.Set(1u, b);
  return pair;
}

// socketpair(type) -> [fd, fd]; type is SOCK_STREAM (1) or SOCK_SEQPACKET (5).
static Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int type = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : SOCK_STREAM;
  int fds[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) return Errno(env, errno);
  return Pair(env, fds[0], fds[1]);
}

static Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  socklen_t len;
  if (!UnixAddress(info[0], &addr, &len)) return Errno(env, EINVAL);
  int backlog = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 64;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno(env, errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    return Errno(env, err);
  }
  return Napi::Number::New(env, fd);
}

// connect on a Unix stream socket completes at once or fails (no EINPROGRESS for AF_UNIX
// unless the backlog is full, which is reported as EAGAIN).
static Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_un addr;
  socklen_t len;
  if (!UnixAddress(info[0], &addr, &len)) return Errno(env, EINVAL);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno(env, errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    int err = errno;
    close(fd);
    return Errno(env, err);
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return Errno(env, EBADF);
  int fd = accept4(info[0].As<Napi::Number>().Int32Value(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  return Napi::Number::New(env, fd < 0 ? -errno : fd);
}

// sendFds(sock, data, fds[]) -> bytes sent. At least one data byte must go with the rights.
static Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (!info[0].IsNumber() || !ViewData(env, info[1], &data, &length) || !info[2].IsArray()) return Errno(env, EINVAL);
  Napi::Array list = info[2].As<Napi::Array>();
  size_t count = list.Length();
  if (count > kMaxFds || (count > 0 && length == 0)) return Errno(env, EINVAL);
  std::vector<int> fds(count);
  for (size_t i = 0; i < count; i++) fds[i] = list.Get(static_cast<uint32_t>(i)).As<Napi::Number>().Int32Value();

  iovec iov = {data, length};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (count ? count : 1)));
  if (count > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * count);
  }
  ssize_t sent = sendmsg(info[0].As<Napi::Number>().Int32Value(), &msg, MSG_NOSIGNAL);
  return Napi::Number::New(env, sent < 0 ? -errno : static_cast<double>(sent));
}

// recvFds(sock, buf) -> [bytes, fds[], truncatedFlags] or -errno. Received fds are close-on-exec.
static Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (!info[0].IsNumber() || !ViewData(env, info[1], &data, &length)) return Errno(env, EINVAL);
  iovec iov = {data, length};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t got = recvmsg(info[0].As<Napi::Number>().Int32Value(), &msg, MSG_CMSG_CLOEXEC);
  if (got < 0) return Errno(env, errno);
  Napi::Array fds = Napi::Array::New(env);
  uint32_t n = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.Set(n++, fd);
    }
  }
  Napi::Array result = Napi::Array::New(env, 3);
  result.Set(0u, Napi::Number::New(env, static_cast<double>(got)));
  result.Set(1u, fds);
  result.Set(2u, Napi::Number::New(env, msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));
  return result;
}

// peerCred(sock) -> [pid, uid, gid]: who is on the other end of a connected Unix socket.
static Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return Errno(env, EBADF);
  ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    return Errno(env, errno);
  }
  Napi::Array result = Napi::Array::New(env, 3);
  result.Set(0u, Napi::Number::New(env, cred.pid));
  result.Set(1u, Napi::Number::New(env, cred.uid));
  result.Set(2u, Napi::Number::New(env, cred.gid));
  return result;
}

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds, "recvFds"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
}

}  // namespace viommu
