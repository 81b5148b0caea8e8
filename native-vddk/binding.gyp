{
  "targets": [
    {
      "target_name": "vddk",
      "sources": [
        "src/addon.cc",
        "src/copy_job.cc",
        "src/hash_blocks.cc",
        "src/descriptor.cc",
        "src/file_sink.cc",
        "src/rate_limiter.cc",
        "src/sha256.cc",
        "src/vddk_library.cc",
        "src/vddk_sink.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
