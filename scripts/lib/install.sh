# Shared install steps for scripts/quickstart and scripts/test (sourced, not executed).

# Debian packages the runtime and the tests use. Skipped when all are present.
SYSTEM_PACKAGES=(python3 python3-venv python3-pip ca-certificates
  runc conmon containernetworking-plugins nftables iproute2 busybox-static skopeo umoci
  docker-registry curl iptables util-linux)

install_system_packages() {
  local missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ] || ! command -v apt-get >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  echo "installing system packages: ${missing[*]}"
  # Packages such as docker-registry ship a service that would start on install and hold a port
  # (5000) kubelite uses; a policy-rc.d for the duration of the install keeps every service down.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  local rc=$?
  [ -n "$made_policy" ] && rm -f "$policy"
  return $rc
}

make_venv() {
  local venv=$1
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
}
