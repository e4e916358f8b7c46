# Sourced, never run: installs pinned tool sets once into .cache/, shared by
# scripts/lint-openapi.sh, scripts/gen-clients.sh and scripts/test-clients.sh.
#   pinned_venv REQUIREMENTS CACHE_DIR   a virtual environment with exactly the
#       `==` pins of REQUIREMENTS (installed with --no-deps, so the file lists
#       every dependency); Debian's pip refuses system-wide installs.
#   pinned_npm PACKAGE_DIR CACHE_DIR     `npm ci` of PACKAGE_DIR's package.json
#       and package-lock.json.
# Each prints the directory it made (the venv; the one holding node_modules).
# An install is named by a digest of its lock file and reused while that file
# is unchanged; a changed pin installs afresh and drops the older install.
# The caller uses `set -e`; messages go to stderr.

# Callers take the printed directory with $(...): without this, a failed
# install inside it would carry on and mark itself installed.
shopt -s inherit_errexit

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # apt_install
# Short digest of a lock file: names the cached install made from it.
digest() { sha256sum "$1" | cut -c1-16; }

pinned_venv() {
  local requirements=$1 cache=$2 venv
  venv="$cache/venv-$(digest "$requirements")"
  if [[ ! -f "$venv/.installed" ]]; then
    command -v python3 >/dev/null || apt_install python3
    # Debian splits venv (and the ensurepip it needs) into python3-venv.
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    rm -rf "$cache"/venv-*  # this one, half made, or one of an older pin
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
    touch "$venv/.installed"
  fi
  echo "$venv"
}

pinned_npm() {
  local package_dir=$1 cache=$2 dir
  dir="$cache/npm-$(digest "$package_dir/package-lock.json")"
  if [[ ! -f "$dir/.installed" ]]; then
    command -v npm >/dev/null || apt_install nodejs npm
    rm -rf "$cache"/npm-*
    mkdir -p "$dir"
    cp "$package_dir/package.json" "$package_dir/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    touch "$dir/.installed"
  fi
  echo "$dir"
}
