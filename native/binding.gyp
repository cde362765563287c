{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")"
  },
  "targets": [
    {
      "target_name": "retinagrade_torch",
      "sources": ["src/binding.cc", "src/cpu_allocator.cc", "src/distributed.cc", "src/adam.cc", "src/small_map_conv.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: in a worker thread being terminated, an error
      # cannot reach JavaScript; node-addon-api then drops it instead of terminating the process.
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      # -fopenmp-simd: `#pragma omp simd` (adam.cc) without an OpenMP runtime of our own;
      # -fno-math-errno: std::sqrt without an errno branch, so loops over it vectorize.
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-fopenmp-simd", "-fno-math-errno", "-Wno-unused-parameter"],
      "conditions": [
        ["libtorch==''", {
          "include_dirs": ["/usr/include", "/usr/include/torch/csrc/api/include"],
          "libraries": ["-ltorch", "-ltorch_cpu", "-lc10", "-ldnnl"],
          # Debian's libtorch runs on the system's oneDNN (libdnnl-dev) and OpenMP (libgomp):
          # small_map_conv.cc calls the one, adam.cc's at::parallel_for runs on the other.
          "defines": ["RETINAGRADE_SYSTEM_ONEDNN"],
          "cflags_cc": ["-fopenmp"],
          "ldflags": ["-fopenmp"]
        }, {
          "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
          "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib", "-ltorch", "-ltorch_cpu", "-lc10"],
          "defines": ["_GLIBCXX_USE_CXX11_ABI=<!(node -p \"process.env.LIBTORCH_CXX11_ABI || '1'\")"]
        }]
      ]
    }
  ]
}
