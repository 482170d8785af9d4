#!/bin/bash
# Chromium in kiosk mode on the kiosk Pi, showing the local Footfall kiosk UI; restarted whenever it exits.
# Started by the desktop session (deploy/kiosk/labwc-autostart, or deploy/kiosk/footfall-chromium.service).
#
# Settings (environment):
#   KIOSK_URL          default http://127.0.0.1:8080/
#   KIOSK_OPEN_FROM    default 07:30   the screen stays on (no blanking) from this local time...
#   KIOSK_OPEN_UNTIL   default 21:00   ...until this one; outside opening hours the display is switched off
#   KIOSK_OUTPUT       wlr-randr output name to switch (default: the first one, e.g. DSI-1 or HDMI-A-1)
# Maintenance: `touch ~/.footfall-kiosk-pause` and close Chromium: it is not restarted until the file is removed.
set -u

URL="${KIOSK_URL:-http://127.0.0.1:8080/}"
OPEN_FROM="${KIOSK_OPEN_FROM:-07:30}"
OPEN_UNTIL="${KIOSK_OPEN_UNTIL:-21:00}"
PAUSE="$HOME/.footfall-kiosk-pause"
CHROMIUM="$(command -v chromium || command -v chromium-browser)"

output_name() {
  [ -n "${KIOSK_OUTPUT:-}" ] && { echo "$KIOSK_OUTPUT"; return; }
  command -v wlr-randr >/dev/null 2>&1 && wlr-randr 2>/dev/null | awk '/^[^ ]/ {print $1; exit}'
}

minutes() { local h=${1%%:*} m=${1##*:}; echo $(( 10#$h * 60 + 10#$m )); }

# Screen blanking: off while the center is open, display off outside opening hours (checked every minute).
screen_hours() {
  local out
  out="$(output_name)"
  [ -n "$out" ] || return 0
  local from close now state
  from=$(minutes "$OPEN_FROM"); close=$(minutes "$OPEN_UNTIL")
  while :; do
    now=$(minutes "$(date +%H:%M)")
    if (( now >= from && now < close )); then state=--on; else state=--off; fi
    wlr-randr --output "$out" "$state" >/dev/null 2>&1
    sleep 60
  done
}

# X11 sessions (older Raspberry Pi OS): no DPMS, no screen saver.
if [ -n "${DISPLAY:-}" ] && command -v xset >/dev/null 2>&1; then
  xset s off; xset -dpms; xset s noblank
fi
screen_hours &

# Wait for the local app (footfall-kiosk.service) before showing anything.
until curl -fsS -o /dev/null "${URL}api/state"; do sleep 1; done

while :; do
  if [ -e "$PAUSE" ]; then sleep 5; continue; fi
  "$CHROMIUM" \
    --kiosk "$URL" \
    --incognito \
    --noerrdialogs \
    --disable-pinch \
    --overscroll-history-navigation=0 \
    --disable-session-crashed-bubble \
    --check-for-update-interval=31536000 \
    --disable-infobars \
    --disable-translate \
    --disable-features=TranslateUI,Translate \
    --no-first-run \
    --password-store=basic \
    --autoplay-policy=no-user-gesture-required \
    --touch-events=enabled \
    --ozone-platform-hint=auto \
    --lang=zh-CN
  sleep 2  # crashed or closed: start it again
done
