# The two commands of the README. Each makes and uses the project's own venv (.venv), so neither needs an
# activated venv nor writes into Debian's externally managed Python.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

# What the tests need from Debian: a real broker, a browser with CJK fonts, PostgreSQL, ffmpeg for the RTSP test,
# nginx for the TLS reverse-proxy test, GStreamer's RTSP server (python3-gi bindings) for the IP camera tests, and
# strace to see the district broker's saves reach the disk.
SYSTEM_PACKAGES := python3-venv mosquitto mosquitto-clients chromium fonts-noto-cjk systemd logrotate openssl \
	postgresql ffmpeg nginx python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good strace

.PHONY: install system demo test lint bench js

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# axe-core, which the browser tests inject into the pages they audit (pinned in tests/js/package-lock.json).
tests/js/node_modules/axe-core/axe.min.js: tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $@

js: tests/js/node_modules/axe-core/axe.min.js

system:
	@sh tests/system-packages.sh $(SYSTEM_PACKAGES)
	@# Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's): only when missing.
	@command -v npm >/dev/null || sh tests/system-packages.sh npm

demo: $(VENV)/.installed
	footfall demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: system lint js
	$(PY) -m pytest -q

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
