# Build the Python extension into a venv and run the Python suites (sourced by scripts/test).
# Needs: python3 with venv (Debian python3-venv); PyPI for tests/python/requirements.txt.

# Create target/venv with the test requirements and build the extension into it (also used by
# scripts/chaos).
python_venv() {
  local venv=target/venv
  step "Python: venv in $venv (tests/python/requirements.txt)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt

  step "Python: build the extension into the venv (maturin develop, shares target/)"
  VIRTUAL_ENV="$PWD/$venv" PATH="$PWD/$venv/bin:$PATH" maturin develop -q
}

run_python_suites() {
  local venv=target/venv
  python_venv

  step "Python: the stubs match the extension (mypy.stubtest)"
  (cd python && "../$venv/bin/python" -m mypy.stubtest axonal._native)

  step "Python tests (pytest)"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python

  step "Python: the monitoring notebook runs headless (nbclient) and shows the breaker open and close"
  "$venv/bin/python" tests/python/run_notebook.py

  step "Python: pip install . into a fresh venv (the dev profile, so it reuses target/)"
  rm -rf target/venv-pip
  python3 -m venv target/venv-pip
  MATURIN_PEP517_ARGS="--profile dev" target/venv-pip/bin/pip install -q --disable-pip-version-check .
  (cd target && venv-pip/bin/python -c 'import axonal, axonal.notebook, pathlib; \
    assert (pathlib.Path(axonal.__file__).parent / "py.typed").exists(); \
    g = axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0]); \
    print("pip install .: axonal", axonal.__version__, axonal.Engine(g).recall([0]).nodes.tolist())')
}
