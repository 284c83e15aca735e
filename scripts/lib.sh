# shellcheck shell=bash
# Shared by the project's shell scripts: `source "$(dirname "$0")/../scripts/lib.sh"`.

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs those of the Debian packages "$@" that are missing (NAME or NAME=VERSION); sets installed_any to 1 when
# it installed something, 0 when everything was there. Fails when apt does.
ensure_packages() {
  local missing=() p name want have
  # shellcheck disable=SC2034 # read by the scripts that source this file
  installed_any=0
  for p in "$@"; do
    name="${p%%=*}"
    want="${p#"$name"}"
    want="${want#=}"
    have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
    case "$have" in
      "install ok installed "*) [ -z "$want" ] || [ "${have##* }" = "$want" ] || missing+=("$p") ;;
      *) missing+=("$p") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-downgrades \
    "${missing[@]}" || return 1
  # shellcheck disable=SC2034
  installed_any=1
}

# bookworm's qemu-system-* packages need bookworm's qemu-utils; a newer one from backports (as on the project's build
# machines) blocks them, so it is pinned to the version bookworm offers.
bookworm_qemu_utils() {
  local v
  v="$(apt-cache policy qemu-system-common 2>/dev/null | awk '/Candidate:/{print $2}')"
  if [ -n "$v" ] && [ "$v" != "(none)" ]; then echo "qemu-utils=$v"; else echo qemu-utils; fi
}
