// Memory: mmap of a file descriptor (or anonymous memory for UserMemory.alloc) handed to
// JavaScript as an external ArrayBuffer over the real pages, so the address that goes into an
// iommufd pointer field (user_va, data_uptr, ...) is the address of the bytes JavaScript sees.
//
// Unmapping is explicit. The table below keeps every live mapping's ArrayBuffer strongly
// referenced (it cannot be collected while mapped), and munmap detaches it first, so a stale
// Uint8Array reads as empty instead of touching unmapped memory.
#include "common.h"

#include <sys/mman.h>
#include <unistd.h>
#include <unordered_map>

namespace viommu {

namespace {

struct Mapping {
  size_t length;
  napi_env env;
  napi_ref buffer;
};

std::unordered_map<uintptr_t, Mapping> mappings;

void NoFinalize(napi_env, void*, void*) {}

}  // namespace

// mmap(fd, length, offset, prot, flags) -> [addr: bigint, ArrayBuffer] or -errno.
static Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t length = 0, offset = 0;
  if (!info[0].IsNumber() || !Int64Arg(info[1], &length) || !Int64Arg(info[2], &offset) ||
      !info[3].IsNumber() || !info[4].IsNumber() || length <= 0) {
    return Errno(env, EINVAL);
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int prot = info[3].As<Napi::Number>().Int32Value();
  int flags = info[4].As<Napi::Number>().Int32Value();
  void* addr = mmap(nullptr, static_cast<size_t>(length), prot, flags, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) return Errno(env, errno);
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, addr, static_cast<size_t>(length), NoFinalize, nullptr, &buffer) != napi_ok) {
    munmap(addr, static_cast<size_t>(length));
    // The runtime refuses external buffers (a V8 sandbox build): say so instead of crashing.
    return Errno(env, ENOTSUP);
  }
  napi_ref ref;
  napi_create_reference(env, buffer, 1, &ref);
  mappings[reinterpret_cast<uintptr_t>(addr)] = Mapping{static_cast<size_t>(length), env, ref};
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(addr))));
  result.Set(1u, Napi::Value(env, buffer));
  return result;
}

// munmap(addr, length): only whole mappings made by mmap above; anything else is EINVAL.
static Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t addr = 0, length = 0;
  if (!Int64Arg(info[0], &addr) || !Int64Arg(info[1], &length)) return Errno(env, EINVAL);
  auto it = mappings.find(static_cast<uintptr_t>(addr));
  if (it == mappings.end() || it->second.env != env) return Errno(env, EINVAL);
  if (length >= 0 && static_cast<size_t>(length) != it->second.length) return Errno(env, EINVAL);
  napi_value buffer;
  if (napi_get_reference_value(env, it->second.buffer, &buffer) == napi_ok && buffer != nullptr) {
    napi_detach_arraybuffer(env, buffer);
  }
  napi_delete_reference(env, it->second.buffer);
  size_t mapped = it->second.length;
  mappings.erase(it);
  if (munmap(reinterpret_cast<void*>(addr), mapped) < 0) return Errno(env, errno);
  return Napi::Number::New(env, 0);
}

static Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
}

}  // namespace viommu
