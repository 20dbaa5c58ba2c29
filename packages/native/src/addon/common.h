// Shared helpers of the viommu native addon. The addon only moves bytes between JavaScript and
// the kernel: it never interprets an iommufd struct (their layouts live in @viommu/uapi).
//
// Error convention: every call returns a number; a negative one is -errno. JavaScript turns it
// into a SystemError. Returning instead of throwing keeps the hot path (ioctl) free of exception
// objects and keeps errno handling in one TypeScript function.
#pragma once

#include <napi.h>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace viommu {

inline Napi::Number Errno(Napi::Env env, int err) { return Napi::Number::New(env, -err); }

// A Uint8Array (or any ArrayBufferView) argument's data and length; false if it is not one.
bool ViewData(napi_env env, napi_value value, void** data, size_t* length);

// An integer argument; 64-bit values may come as a BigInt or as a safe-integer Number.
bool Int64Arg(const Napi::Value& value, int64_t* out);

void InitIo(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);

}  // namespace viommu
