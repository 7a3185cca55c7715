# Build and run the C and C++ suites against the debug libaxonal (sourced by scripts/test).
# Needs: cc, c++, libcjson-dev, valgrind, pkg-config.

run_c_suites() {
  local lib=target/debug
  local strict=(-Wall -Wextra -Wpedantic -Werror)
  # The features the library is built with (its defaults); the installed axonal.pc says the same.
  local features=(-DAXONAL_FEATURE_OPENCL=1 -DAXONAL_FEATURE_HTTP=1)
  local sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -g)
  # `cargo test` links the library only into test binaries; build the shared object itself (this
  # reuses the test build's compiled crates, so it costs one link).
  cargo build --quiet -p axonal-ffi
  # The library's SONAME is libaxonal.so.<ABI>; the build only makes libaxonal.so.
  local abi
  abi=$(sed -n 's/^#define AXONAL_ABI_VERSION \([0-9]*\)$/\1/p' include/axonal.h)
  ln -sf libaxonal.so "$lib/libaxonal.so.$abi"
  mkdir -p target/c

  step "C tests (-Wall -Wextra -Wpedantic -Werror, ASan + UBSan)"
  cc -std=c11 "${strict[@]}" "${features[@]}" "${sanitize[@]}" -Iinclude tests/c/test_api.c -L"$lib" -laxonal -lcjson -lpthread -lm \
    -Wl,-rpath,"$PWD/$lib" -o target/c/test_api
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 target/c/test_api

  step "C tests under valgrind (no leaks, no invalid reads)"
  cc -std=c11 "${strict[@]}" "${features[@]}" -g -Iinclude tests/c/test_api.c -L"$lib" -laxonal -lcjson -lpthread -lm \
    -Wl,-rpath,"$PWD/$lib" -o target/c/test_api_plain
  # Without an OpenCL platform: valgrind checks this library, not PoCL's JIT compiler.
  local no_icd
  no_icd=$(mktemp -d)
  OCL_ICD_VENDORS="$no_icd" valgrind --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite target/c/test_api_plain
  rmdir "$no_icd"

  step "C++ wrapper tests (-std=c++17 -Wall -Wextra -Werror, ASan + UBSan)"
  c++ -std=c++17 -Wall -Wextra -Werror "${features[@]}" "${sanitize[@]}" -Iinclude tests/cpp/test_wrapper.cpp -L"$lib" -laxonal -lpthread \
    -Wl,-rpath,"$PWD/$lib" -o target/c/test_wrapper
  target/c/test_wrapper

  step "the C library tarball (scripts/package), unpacked into an empty prefix: the docs/c-api.md example builds and runs with pkg-config alone"
  # The dev profile reuses this run's build; a release artifact is the same script's default.
  rm -rf target/dist target/prefix
  AXONAL_PROFILE=dev scripts/package target/dist
  mkdir target/prefix
  tar -C target/prefix -xzf target/dist/axonal-*.tar.gz
  local unpacked pc
  unpacked=$(echo target/prefix/axonal-*)
  pc="$PWD/$unpacked/lib/pkgconfig"
  for f in LICENSE README.md include/axonal.h include/axonal.hpp lib/libaxonal.a "lib/libaxonal.so.$abi" \
    lib/libaxonal.so lib/pkgconfig/axonal.pc; do
    [ -e "$unpacked/$f" ] || { echo "tarball lacks $f" >&2; return 1; }
  done
  cc -std=c11 "${strict[@]}" tests/c/example.c $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs axonal) \
    -Wl,-rpath,"$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir axonal)" -o target/c/example
  target/c/example > target/c/example.out
  grep -q '"status":"healthy"' target/c/example.out
  readelf -d "$unpacked/lib/libaxonal.so.$abi" | grep -q "SONAME.*\[libaxonal\.so\.$abi\]"
  # Linked against the shared library through its link, not the static one beside it.
  readelf -d target/c/example | grep -q "NEEDED.*\[libaxonal\.so\.$abi\]"
  # And statically: libaxonal.a (by file name) with the .pc's Libs.private.
  local static_libs
  static_libs=$(PKG_CONFIG_PATH=$pc pkg-config --static --libs axonal)
  cc -std=c11 "${strict[@]}" tests/c/example.c $(PKG_CONFIG_PATH=$pc pkg-config --cflags axonal) \
    ${static_libs/-laxonal/-l:libaxonal.a} -o target/c/example_static
  if readelf -d target/c/example_static | grep -q "NEEDED.*libaxonal"; then
    echo "the static example links libaxonal dynamically" >&2
    return 1
  fi
  target/c/example_static | grep -q '"status":"healthy"'
  echo "example: $(head -n 1 target/c/example.out)"

  step "C benchmark (smoke run; numbers come from a release build, see docs/performance.md)"
  cc -O2 -std=c11 "${strict[@]}" "${features[@]}" -Iinclude tests/c/bench_recall.c -L"$lib" -laxonal -Wl,-rpath,"$PWD/$lib" -o target/c/bench_recall
  target/c/bench_recall 200 > /dev/null
}
