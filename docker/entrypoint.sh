#!/usr/bin/env bash
# lamp container entrypoint: give CoppeliaSim 4.1 an X display with GLX (it needs one even with headless=True),
# then run the command.
#   RENDER=xvfb     default when DISPLAY is unset: start Xvfb (CPU rendering with Mesa llvmpipe; slow, works anywhere)
#   RENDER=host     use the DISPLAY given with -e DISPLAY=:N and -v /tmp/.X11-unix:/tmp/.X11-unix (a host NVIDIA
#                   X server: the fast GPU option; default when DISPLAY is set)
#   RENDER=vgl-egl  Xvfb for the 2-D display plus VirtualGL's EGL back end on the GPU (needs VirtualGL >= 3 in the
#                   image; UNVERIFIED with CoppeliaSim 4.1)
# X11_SOCKET_DIR and X_LOCK_DIR (where X servers keep /tmp/.X<N>-lock) exist for the tests; keep the defaults.
set -euo pipefail

x11_dir="${X11_SOCKET_DIR:-/tmp/.X11-unix}"
lock_dir="${X_LOCK_DIR:-/tmp}"

# A display is alive when its socket exists and, where xdpyinfo is installed (x11-utils, in the image), answers.
display_alive() {
  [[ -S "${x11_dir}/X$1" ]] || return 1
  if command -v xdpyinfo >/dev/null 2>&1; then
    xdpyinfo -display ":$1" >/dev/null 2>&1 || return 1
  fi
}

# Xvfb refuses a display whose /tmp/.X<N>-lock names a live PID. Locks (and sockets) outlive a killed Xvfb, e.g. in
# the image layer of the build's smoke test, and container PIDs are small and reused, so that PID is often alive
# (under --init it can be the new Xvfb's own): remove every lock whose display does not answer.
remove_stale_x_locks() {
  local lock num
  for lock in "${lock_dir}"/.X*-lock; do
    [[ -e "$lock" ]] || continue
    num="${lock##*/.X}"
    num="${num%-lock}"
    if ! display_alive "$num"; then
      rm -f "$lock" "${x11_dir}/X${num}"
    fi
  done
}

start_xvfb() {
  local num="${XVFB_DISPLAY:-99}"
  local socket="${x11_dir}/X${num}"
  remove_stale_x_locks
  if ! display_alive "$num"; then
    if ! command -v Xvfb >/dev/null 2>&1; then
      echo "entrypoint: no DISPLAY and no Xvfb; install xvfb or pass a host display (RENDER=host -e DISPLAY=...)" >&2
      exit 1
    fi
    rm -f "$socket"
    Xvfb ":${num}" -screen 0 "${XVFB_SCREEN:-1280x1024x24}" +extension GLX +render -noreset >/tmp/xvfb.log 2>&1 &
    for _ in $(seq 1 100); do
      [[ -S "$socket" ]] && break
      sleep 0.1
    done
    if [[ ! -S "$socket" ]]; then
      echo "entrypoint: Xvfb did not start on :${num}; its log follows" >&2
      cat /tmp/xvfb.log >&2 || true
      exit 1
    fi
  fi
  export DISPLAY=":${num}"
}

render="${RENDER:-}"
if [[ -z "$render" ]]; then
  if [[ -n "${DISPLAY:-}" ]]; then render=host; else render=xvfb; fi
fi

case "$render" in
  xvfb)
    start_xvfb
    ;;
  host)
    if [[ -z "${DISPLAY:-}" ]]; then
      echo "entrypoint: RENDER=host needs -e DISPLAY=:N and -v /tmp/.X11-unix:/tmp/.X11-unix" >&2
      exit 2
    fi
    ;;
  vgl-egl)
    start_xvfb
    if ! command -v vglrun >/dev/null 2>&1; then
      echo "entrypoint: RENDER=vgl-egl needs VirtualGL >= 3 (vglrun) in the image" >&2
      exit 2
    fi
    exec vglrun -d "${VGL_DEVICE:-egl0}" "$@"
    ;;
  *)
    echo "entrypoint: unknown RENDER='${render}'; use xvfb, host or vgl-egl" >&2
    exit 2
    ;;
esac

if [[ $# -eq 0 ]]; then
  set -- lamp doctor --backend rlbench
fi
exec "$@"
