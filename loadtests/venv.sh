# Sourced by the load-test scripts: the locust toolchain in its own virtualenv.

# ensure_locust_venv LOADTESTS_DIR: create LOADTESTS_DIR/.venv when missing and (re)install
# requirements.txt when it changed since the last install.
ensure_locust_venv() {
  local dir="$1" venv="$1/.venv" want
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv"
    python3 -m venv "$venv"
  fi
  want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    echo "== installing loadtests/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
    echo "$want" >"$venv/.requirements.sha256"
  fi
}
