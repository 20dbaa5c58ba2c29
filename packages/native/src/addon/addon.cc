// Entry point of the viommu native addon (see common.h for the conventions).
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  viommu::InitIo(env, exports);
  viommu::InitMemory(env, exports);
  viommu::InitPoll(env, exports);
  viommu::InitSocket(env, exports);
  exports.Set("abiVersion", Napi::Number::New(env, 5));
  return exports;
}

NODE_API_MODULE(viommu_native, Init)
