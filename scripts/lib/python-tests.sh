# Build the Python extension into a venv and run the Python suites (sourced by scripts/test).
# Needs: python3 with venv (Debian python3-venv); PyPI for tests/python/requirements.txt.

# PATH without the Rust toolchain: the wheel must install and run where there is none. A toolchain
# in a system folder (Debian's cargo in /usr/bin) cannot be taken off PATH without the rest of the
# system: that is an error, not a silent pass.
path_without_rust() {
  local dir kept=() dirs
  IFS=: read -ra dirs <<< "$PATH"
  for dir in "${dirs[@]}"; do
    if [ -x "$dir/cargo" ] || [ -x "$dir/rustc" ]; then
      case "$dir" in
        /usr/bin | /bin | /usr/local/bin | /usr/sbin | /sbin)
          echo "the Rust toolchain is in $dir, which the Python tests need: install it with rustup instead" >&2
          return 1 ;;
      esac
    else
      kept+=("$dir")
    fi
  done
  (IFS=:; echo "${kept[*]}")
}

# Build the wheel (scripts/wheel) and install the file alone into target/venv, with the test
# requirements and no Rust toolchain on PATH (also used by scripts/chaos).
python_venv() {
  local venv=target/venv
  # target/wheels-dev: not to be mistaken for the release wheel scripts/wheel puts in target/wheels.
  step "Python: build the abi3 wheel (scripts/wheel; the dev profile here, to share this run's build)"
  AXONAL_PROFILE=dev scripts/wheel target/wheels-dev
  local wheel
  wheel=$(ls target/wheels-dev/axonal-*.whl)

  step "Python: the wheel alone into the venv $venv, no Rust toolchain on PATH (+ tests/python/requirements.txt)"
  local clean_path
  clean_path=$(path_without_rust)
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  PATH="$clean_path" "$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
  PATH="$clean_path" "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  # The wheel's dependencies are all there (its Requires-Dist against what is installed).
  PATH="$clean_path" "$venv/bin/pip" check
  # The file installed is the package: version from Cargo, stubs and py.typed inside, no source tree.
  local version
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
  (cd target && PATH="$clean_path" "venv/bin/python" - "$version" <<'PY'
import importlib.metadata, pathlib, shutil, sys
import axonal
package = pathlib.Path(axonal.__file__).parent
assert "site-packages" in str(package), f"axonal imported from {package}, not from the installed wheel"
assert axonal.__version__ == sys.argv[1] == importlib.metadata.version("axonal"), (
    axonal.__version__, sys.argv[1], importlib.metadata.version("axonal"))
assert shutil.which("cargo") is None and shutil.which("rustc") is None, "a Rust toolchain on PATH"
for name in ("py.typed", "_native.pyi", "__init__.py", "notebook.py"):
    assert (package / name).exists(), f"the wheel lacks {name}"
print("wheel installed: axonal", axonal.__version__, "from", package)
PY
  )
}

run_python_suites() {
  local venv=target/venv
  python_venv
  local clean_path
  clean_path=$(path_without_rust)

  step "Python: the stubs match the extension (mypy.stubtest, on the installed wheel)"
  (cd target && PATH="$clean_path" venv/bin/python -m mypy.stubtest axonal._native)

  step "Python tests (pytest, on the installed wheel)"
  PATH="$clean_path" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python

  step "Python: the monitoring notebook runs headless (nbclient) and shows the breaker open and close"
  PATH="$clean_path" "$venv/bin/python" tests/python/run_notebook.py

  step "Python: the monitoring notebook in a real browser (JupyterLab headless, Debian's Chromium driven by Playwright)"
  if ensure_debian_packages chromium fonts-dejavu-core && [ -x /usr/bin/chromium ]; then
    PATH="$clean_path" "$venv/bin/python" tests/python/run_browser.py --shots target/browser
  else
    echo "SKIPPED: the browser test needs Debian's chromium, which could not be installed (see apt-get above)"
  fi
}
