{
  "targets": [
    {
      "target_name": "viommu_native",
      "sources": [
        "src/addon/addon.cc",
        "src/addon/io.cc",
        "src/addon/memory.cc",
        "src/addon/poll.cc",
        "src/addon/socket.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
