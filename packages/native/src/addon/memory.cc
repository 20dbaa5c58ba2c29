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
  size_t length;  // what the ArrayBuffer covers
  size_t span;    // what munmap releases (length plus any guard)
  napi_env env;
  napi_ref buffer;
};

std::unordered_map<uintptr_t, Mapping> mappings;

void NoFinalize(napi_env, void*, void*) {}

}  // namespace

// Hands [addr, external ArrayBuffer over `length` bytes] to JavaScript and records the mapping.
static Napi::Value Expose(Napi::Env env, void* addr, size_t length, size_t span) {
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, addr, length, NoFinalize, nullptr, &buffer) != napi_ok) {
    munmap(addr, span);
    // The runtime refuses external buffers (a V8 sandbox build): say so instead of crashing.
    return Errno(env, ENOTSUP);
  }
  napi_ref ref;
  napi_create_reference(env, buffer, 1, &ref);
  mappings[reinterpret_cast<uintptr_t>(addr)] = Mapping{length, span, env, ref};
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(addr))));
  result.Set(1u, Napi::Value(env, buffer));
  return result;
}

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
  return Expose(env, addr, static_cast<size_t>(length), static_cast<size_t>(length));
}

// allocGuarded(length, guard) -> [addr, ArrayBuffer] or -errno: anonymous read-write memory
// followed by `guard` bytes of PROT_NONE. The guard keeps the range right after an allocation
// from ever holding another mapping, so the kernel faults (EFAULT) on it, as the process
// contract promises for any address outside an allocation. Both lengths are page multiples.
static Napi::Value AllocGuarded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t length = 0, guard = 0;
  if (!Int64Arg(info[0], &length) || !Int64Arg(info[1], &guard) || length <= 0 || guard < 0) return Errno(env, EINVAL);
  size_t span = static_cast<size_t>(length + guard);
  void* addr = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (addr == MAP_FAILED) return Errno(env, errno);
  if (mprotect(addr, static_cast<size_t>(length), PROT_READ | PROT_WRITE) < 0) {
    int err = errno;
    munmap(addr, span);
    return Errno(env, err);
  }
  return Expose(env, addr, static_cast<size_t>(length), span);
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
  size_t mapped = it->second.span;
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
  exports.Set("allocGuarded", Napi::Function::New(env, AllocGuarded, "allocGuarded"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
}

}  // namespace viommu
