// Readiness: poll(2) with a zero timeout for the exact revents, a blocking poll(2) for a caller
// that must wait synchronously (the daemon client's direct channel), and a libuv poll watcher so
// JavaScript can wait for an fd without a busy loop and without blocking the event loop.
//
// The watcher is deliberately dumb: start(uvEvents) / stop() / close(), and a callback
// (status, uvEvents) whenever libuv sees the fd ready. Waiters, timeouts and cancellation live in
// TypeScript (src/poller.ts), which re-reads the exact revents with pollNow() on each wake-up.
#include "common.h"

#include <poll.h>
#include <time.h>
#include <uv.h>

namespace viommu {

static Napi::Value PollNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) return Errno(env, EINVAL);
  struct pollfd p = {info[0].As<Napi::Number>().Int32Value(),
                     static_cast<short>(info[1].As<Napi::Number>().Int32Value()), 0};
  int ret = poll(&p, 1, 0);
  if (ret < 0) return Errno(env, errno);
  return Napi::Number::New(env, ret == 0 ? 0 : p.revents);
}

static int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// pollWait(fd, events, timeoutMs) -> revents, 0 on timeout, or -errno. Blocks the calling thread
// in the kernel (negative timeout: forever). A signal (EINTR) does not end the wait early: it
// resumes with what is left of the timeout, so the caller sees only readiness or the deadline.
static Napi::Value PollWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) return Errno(env, EINVAL);
  struct pollfd p = {info[0].As<Napi::Number>().Int32Value(),
                     static_cast<short>(info[1].As<Napi::Number>().Int32Value()), 0};
  int timeout = info[2].As<Napi::Number>().Int32Value();
  int64_t deadline = timeout >= 0 ? NowMs() + timeout : 0;
  for (;;) {
    int ret = poll(&p, 1, timeout);
    if (ret >= 0) return Napi::Number::New(env, ret == 0 ? 0 : p.revents);
    if (errno != EINTR) return Errno(env, errno);
    if (timeout >= 0) {
      int64_t left = deadline - NowMs();
      timeout = left > 0 ? static_cast<int>(left) : 0;
    }
  }
}

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Watcher",
                       {InstanceMethod("start", &Watcher::Start), InstanceMethod("stop", &Watcher::Stop),
                        InstanceMethod("close", &Watcher::Close), InstanceMethod("ref", &Watcher::RefLoop),
                        InstanceMethod("unref", &Watcher::UnrefLoop)});
  }

  // new Watcher(fd, callback). uv_poll_init fails for fds epoll cannot watch (regular files):
  // the error is reported by start(), not thrown, so the caller can fall back.
  explicit Watcher(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Watcher>(info), context_(info.Env(), "viommu.poll") {
    fd_ = info[0].As<Napi::Number>().Int32Value();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(info.Env(), &loop);
    handle_ = new uv_poll_t;
    init_status_ = uv_poll_init(loop, handle_, fd_);
    if (init_status_ != 0) {
      delete handle_;
      handle_ = nullptr;
    } else {
      handle_->data = this;
    }
  }

  ~Watcher() override { Release(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_ == nullptr) return Napi::Number::New(env, init_status_ != 0 ? init_status_ : -EBADF);
    int events = info[0].As<Napi::Number>().Int32Value();
    int status = uv_poll_start(handle_, events, OnReady);
    if (status == 0 && !active_) {
      active_ = true;
      Ref();  // keep the JS object (and its callback) alive while libuv may call it
    }
    return Napi::Number::New(env, status);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopWatching();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopWatching();
    Release();
    return info.Env().Undefined();
  }

  // Whether an active watcher keeps the event loop (the process) alive; it does by default.
  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  void StopWatching() {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  // uv_close is asynchronous: the handle is freed in its close callback, detached from us.
  void Release() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  static void OnReady(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<Watcher*>(handle->data);
    if (self == nullptr || !self->active_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // MakeCallback runs the microtask queue afterwards, so promises resolved here settle now.
    self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, status), Napi::Number::New(env, events)},
                                 self->context_);
  }

  int fd_ = -1;
  int init_status_ = 0;
  bool active_ = false;
  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
};

void InitPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("pollNow", Napi::Function::New(env, PollNow, "pollNow"));
  exports.Set("pollWait", Napi::Function::New(env, PollWait, "pollWait"));
  exports.Set("Watcher", Watcher::Define(env));
  Napi::Object uv = Napi::Object::New(env);
  uv.Set("READABLE", static_cast<int>(UV_READABLE));
  uv.Set("WRITABLE", static_cast<int>(UV_WRITABLE));
  uv.Set("DISCONNECT", static_cast<int>(UV_DISCONNECT));
  uv.Set("PRIORITIZED", static_cast<int>(UV_PRIORITIZED));
  exports.Set("uv", uv);
}

}  // namespace viommu
