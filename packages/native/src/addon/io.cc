// File descriptors: open, close, ioctl, read, write, and the small fd makers the tests and the
// daemon need (pipe, eventfd, memfd, ftruncate). Plain syscalls; errors come back as -errno.
#include "common.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string>

// The machine's libc/kernel headers may predate these; the numbers are the x86-64/arm64 uAPI.
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef EFD_CLOEXEC
#define EFD_CLOEXEC O_CLOEXEC
#endif

namespace viommu {

bool ViewData(napi_env env, napi_value value, void** data, size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    bool is_view = false;
    if (napi_is_dataview(env, value, &is_view) != napi_ok || !is_view) return false;
    return napi_get_dataview_info(env, value, length, data, nullptr, nullptr) == napi_ok;
  }
  napi_typedarray_type type;
  size_t count = 0;
  if (napi_get_typedarray_info(env, value, &type, &count, data, nullptr, nullptr) != napi_ok) return false;
  size_t width = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: width = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: width = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: width = 8; break;
    default: break;
  }
  *length = count * width;
  return true;
}

bool Int64Arg(const Napi::Value& value, int64_t* out) {
  if (value.IsBigInt()) {
    bool lossless = false;
    *out = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) *out = static_cast<int64_t>(value.As<Napi::BigInt>().Uint64Value(&lossless));
    return lossless;
  }
  if (value.IsNumber()) {
    *out = value.As<Napi::Number>().Int64Value();
    return true;
  }
  return false;
}

static Napi::Value Result(Napi::Env env, long ret) {
  return Napi::Number::New(env, ret < 0 ? -errno : static_cast<double>(ret));
}

// open(path, flags): O_CLOEXEC is always added, so no fd leaks into child processes.
static Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) return Errno(env, EINVAL);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  return Result(env, open(path.c_str(), flags | O_CLOEXEC));
}

static Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return Errno(env, EBADF);
  return Result(env, close(info[0].As<Napi::Number>().Int32Value()));
}

// ioctl(fd, request, arg): arg is the struct's bytes (the kernel reads and writes them in place),
// null (a NULL pointer) or an integer passed by value. Raw napi calls: this is the hot path.
static napi_value Ioctl(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  int32_t fd = -1;
  uint32_t request = 0;
  napi_value out;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &request) != napi_ok) {
    napi_create_int32(env, -EINVAL, &out);
    return out;
  }
  unsigned long arg = 0;
  void* data = nullptr;
  size_t length = 0;
  napi_valuetype type;
  napi_typeof(env, argv[2], &type);
  if (type == napi_number) {
    int64_t value = 0;
    napi_get_value_int64(env, argv[2], &value);
    arg = static_cast<unsigned long>(value);
  } else if (type == napi_null || type == napi_undefined) {
    arg = 0;
  } else if (ViewData(env, argv[2], &data, &length)) {
    arg = reinterpret_cast<unsigned long>(data);
  } else {
    napi_create_int32(env, -EINVAL, &out);
    return out;
  }
  int ret = ioctl(fd, request, arg);
  napi_create_int32(env, ret < 0 ? -errno : ret, &out);
  return out;
}

static Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (!info[0].IsNumber() || !ViewData(env, info[1], &data, &length)) return Errno(env, EINVAL);
  return Result(env, read(info[0].As<Napi::Number>().Int32Value(), data, length));
}

static Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  if (!info[0].IsNumber() || !ViewData(env, info[1], &data, &length)) return Errno(env, EINVAL);
  return Result(env, write(info[0].As<Napi::Number>().Int32Value(), data, length));
}

// pread(fd, buf, offset): a read at an offset, leaving the file position alone (what re-reading a
// /proc control file such as fail-nth through one fd needs).
static Napi::Value Pread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data = nullptr;
  size_t length = 0;
  int64_t offset = 0;
  if (!info[0].IsNumber() || !ViewData(env, info[1], &data, &length) || !Int64Arg(info[2], &offset)) return Errno(env, EINVAL);
  return Result(env, pread(info[0].As<Napi::Number>().Int32Value(), data, length, static_cast<off_t>(offset)));
}

// pipe(flags) -> [readFd, writeFd] or -errno.
static Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int flags = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  int fds[2];
  if (pipe2(fds, flags | O_CLOEXEC) < 0) return Errno(env, errno);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, fds[0]);
  pair.Set(1u, fds[1]);
  return pair;
}

// eventfd(initval, flags): through syscall(2), so an old libc header is no obstacle.
static Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  unsigned int initval = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
  int flags = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  return Result(env, syscall(SYS_eventfd2, initval, flags | EFD_CLOEXEC));
}

// memfd_create(name, flags): the file behind IOMMU_IOAS_MAP_FILE.
static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return Errno(env, EINVAL);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned int flags = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  return Result(env, syscall(SYS_memfd_create, name.c_str(), flags | MFD_CLOEXEC));
}

static Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t length = 0;
  if (!info[0].IsNumber() || !Int64Arg(info[1], &length)) return Errno(env, EINVAL);
  return Result(env, ftruncate(info[0].As<Napi::Number>().Int32Value(), static_cast<off_t>(length)));
}

// fcntl(fd, cmd, arg) -> the result or -errno (integer commands only: F_GET_SEALS, F_ADD_SEALS, ...).
static Napi::Value Fcntl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) return Errno(env, EINVAL);
  int arg = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  return Result(env, fcntl(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), arg));
}

// fstat(fd) -> [st_mode, st_size] or -errno: what a received descriptor is and how big.
static Napi::Value Fstat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return Errno(env, EBADF);
  struct stat st;
  if (fstat(info[0].As<Napi::Number>().Int32Value(), &st) < 0) return Errno(env, errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, st.st_mode));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(st.st_size)));
  return out;
}

void InitIo(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  napi_value ioctl_fn;
  napi_create_function(env, "ioctl", NAPI_AUTO_LENGTH, Ioctl, nullptr, &ioctl_fn);
  exports.Set("ioctl", Napi::Value(env, ioctl_fn));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("pread", Napi::Function::New(env, Pread, "pread"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("fcntl", Napi::Function::New(env, Fcntl, "fcntl"));
  exports.Set("fstat", Napi::Function::New(env, Fstat, "fstat"));
}

}  // namespace viommu
