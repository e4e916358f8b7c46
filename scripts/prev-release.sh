#!/usr/bin/env bash
# The previous release: the commit whose gateway and worker the rolling-upgrade
# test (tests/tests/upgrade.rs) runs beside this checkout's, on this
# checkout's schema (docs/deployment.md, "Upgrades").
#   scripts/prev-release.sh dir      prints the directory holding its
#                                    yadtq-gateway and yadtq-worker, building
#                                    them first when this machine has not yet
#   scripts/prev-release.sh commit   prints the pinned commit
# The binaries are built once per machine into
# ${YADTQ_PREV_CACHE:-$HOME/.cache/yadtq}/prev-<commit>, outside the clone, from
# a git worktree of the commit built in this clone's target directory, so the
# dependencies it shares with this checkout are compiled once (about a minute
# more than the checkout's own build when cold; nothing when cached).
# Needs the commit in this clone's history (not a shallow clone).
#
# Move PREV_RELEASE forward when a release changes the schema (a migration),
# the envelope or the statuses it writes, so the test always pairs this code
# with the release it upgrades from.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# The commit that made every reader survive unknown task statuses (issue 22):
# the release later statuses (`waiting`, `held`) upgrade from. Its workers
# report no feature level (workers.feature_level reads 0), so this release's
# gateways answer POST /workflows with 503 while they live (issue 27).
# YADTQ_PREV_RELEASE overrides it (to try an upgrade from another commit).
PREV_RELEASE="${YADTQ_PREV_RELEASE:-c252765d17647929da8c3672227e7b0de3f23cd9}"

log() { echo "[prev-release] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

out="${YADTQ_PREV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yadtq}/prev-$PREV_RELEASE"

build() {
  require_cargo
  if ! git cat-file -e "$PREV_RELEASE^{commit}" 2>/dev/null; then
    # A shallow clone: fetch the commit from where this one came, when it can.
    log "commit ${PREV_RELEASE:0:12} is not in this clone; fetching it"
    git fetch --quiet origin "$PREV_RELEASE" 2>/dev/null || git fetch --quiet --unshallow 2>/dev/null || true
    git cat-file -e "$PREV_RELEASE^{commit}" 2>/dev/null ||
      die "commit $PREV_RELEASE is not in this clone's history and could not be fetched (a shallow clone?)"
  fi
  local src="$ROOT/target/prev-release-src" target="${CARGO_TARGET_DIR:-$ROOT/target}" t0=$SECONDS bin
  log "building the previous release ${PREV_RELEASE:0:12} once for this machine into $out"
  git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
  git worktree prune
  git worktree add --quiet --detach "$src" "$PREV_RELEASE"
  # The whole workspace's binaries, as this checkout builds them, so both
  # resolve the same dependency features and share their builds.
  (cd "$src" && CARGO_TARGET_DIR="$target" CARGO_INCREMENTAL=0 cargo build --quiet --locked --workspace --bins)
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  for bin in yadtq-gateway yadtq-worker; do cp "$target/debug/$bin" "$out.partial/"; done
  echo "$PREV_RELEASE" > "$out.partial/COMMIT"
  rm -rf "$out"
  mv "$out.partial" "$out"
  # The release's binaries now stand where this checkout's belong: remove
  # them, so nothing runs them as this checkout's (the next cargo build
  # links this checkout's back).
  for bin in "$target"/debug/yadtq*; do [[ -f "$bin" && -x "$bin" ]] && rm -f "$bin"; done
  git worktree remove --force "$src"
  log "built in $((SECONDS - t0)) s"
}

case "${1:-}" in
  dir)
    [[ -x "$out/yadtq-gateway" && -x "$out/yadtq-worker" ]] || build
    echo "$out"
    ;;
  commit) echo "$PREV_RELEASE" ;;
  *) echo "usage: $0 dir|commit" >&2; exit 2 ;;
esac
