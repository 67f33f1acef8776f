#!/usr/bin/env bash
# `make up` / `make destroy`: one command for a newcomer; `eval "$(make -s env)"` points
# plain `pulumi` commands in this shell at the same backend.
# - Uses the backend you are logged in to; if none, a local file backend in .state/
#   (git-ignored) with a passphrase file it creates once (.state/passphrase).
# - Creates or selects the stack ($STACK, default dev). A stack it creates without
#   registry credentials gets push: false (the no-account mode), set in its stack file and
#   said so; after that it never changes your config.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: scripts/stack.sh up|destroy|env}
stack=${STACK:-dev}
pulumi=${PULUMI:-pulumi}
state_dir=$PWD/.state

die() { echo "make $action: $*" >&2; exit 1; }
say() { echo "$*" >&2; }

command -v "$pulumi" >/dev/null 2>&1 ||
  die "the Pulumi CLI ($pulumi) is not installed. Install it: https://www.pulumi.com/docs/iac/download-install/ (Linux/macOS: curl -fsSL https://get.pulumi.com | sh), then run make $action again."
if [ "$action" != env ]; then
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed (the program is Go). Install it: https://go.dev/doc/install"
  docker version >/dev/null 2>&1 ||
    die "Docker is not reachable (docker version failed). Start Docker Desktop or the docker service, then run make $action again."
fi

if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! "$pulumi" whoami --non-interactive >/dev/null 2>&1; then
  mkdir -p "$state_dir"
  export PULUMI_BACKEND_URL="file://$state_dir"
  if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    if [ ! -f "$state_dir/passphrase" ]; then
      (umask 077 && head -c 32 /dev/urandom | base64 >"$state_dir/passphrase")
      say "created $state_dir/passphrase: it encrypts this stack's secrets; keep it (it is git-ignored)"
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$state_dir/passphrase"
  fi
  say "backend: local files in $state_dir (not logged in to any Pulumi backend); for plain pulumi commands: eval \"\$(make -s env)\""
fi

if [ "$action" = env ]; then
  for name in PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE_FILE; do
    [ -n "${!name:-}" ] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  exit 0
fi

value() { "$pulumi" config get "$1" 2>/dev/null || true; }

# A pulumi killed mid-update leaves its lock, and every later up stops on "the stack is
# currently locked". Clear it (pulumi cancel) only when it is certainly stale: in this
# project's own backend, taken on this host, by a process that is gone.
clear_stale_lock() {
  local lock pid host
  for lock in "$state_dir"/.pulumi/locks/*/*/"$stack"/*.json; do
    [ -f "$lock" ] || continue
    pid=$(sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p' "$lock")
    host=$(sed -n 's/.*"hostname":"\([^"]*\)".*/\1/p' "$lock")
    if [ -z "$pid" ] || [ "$host" != "$(uname -n)" ] || kill -0 "$pid" 2>/dev/null; then
      return 0 # someone else's, or still running: leave it to them
    fi
    say "stack $stack: a pulumi (pid $pid) ended mid-update and left its lock; clearing it with pulumi cancel"
    "$pulumi" cancel --yes --non-interactive "$stack" >&2
    return 0
  done
}
if ! "$pulumi" stack select --non-interactive "$stack" 2>/dev/null; then
  "$pulumi" stack init --non-interactive "$stack"
  # A new stack without credentials starts in the no-account mode, written where every
  # later run (and you) can see it: push: false in Pulumi.<stack>.yaml.
  if [ "$action" = up ] && [ -z "$(value registryUsername)" ]; then
    "$pulumi" config set push false
    say "new stack $stack: no registry credentials, so push: false (no-account mode) is set in Pulumi.$stack.yaml"
  fi
fi

[ "${PULUMI_BACKEND_URL:-}" = "file://$state_dir" ] && clear_stale_lock

if [ "$action" = up ]; then
  if [ "$(value push)" = false ]; then
    say "push: false: the image is built and run here, nothing is pushed."
    say "to push to Docker Hub: pulumi config set registryUsername <user>; pulumi config set --secret registryPassword <token>; pulumi config set push true; make up"
  fi
  exec "$pulumi" up --yes --skip-preview
fi
exec "$pulumi" "$action" --yes --skip-preview
