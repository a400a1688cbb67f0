#!/usr/bin/env bash
# make run: start the relay and, unless PROMRELAY_UPSTREAM_URL is set, a real
# local Prometheus as its upstream (remote-write receiver enabled, data in a
# temporary folder). Ctrl-C stops both.
set -euo pipefail

RELAY_BIN=${RELAY_BIN:-bin/promrelay}
PROM_PORT=${PROM_PORT:-9090}
LISTEN=${PROMRELAY_LISTEN:-:9091}
RELAY_PORT=${LISTEN##*:}

pids=()
tmp=""
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n "$tmp" ]] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${PROMRELAY_UPSTREAM_URL:-}" ]]; then
	command -v prometheus >/dev/null || { echo "prometheus not found: run 'make deps' (needs apt-get)" >&2; exit 1; }
	tmp=$(mktemp -d)
	cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 15s
YAML
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
		--web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
		--log.level=warn &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && break
		sleep 0.1
	done
	export PROMRELAY_UPSTREAM_URL="http://127.0.0.1:$PROM_PORT/api/v1/write"
	echo "Prometheus (upstream): http://127.0.0.1:$PROM_PORT   (data in $tmp)"
fi

"$RELAY_BIN" -listen "$LISTEN" &
pids+=($!)
sleep 0.3
cat <<TXT
promrelay:             http://localhost:$RELAY_PORT   -> $PROMRELAY_UPSTREAM_URL

Try it:
  echo 'some_metric 3.14' | curl --data-binary @- http://localhost:$RELAY_PORT/metrics/job/demo
  curl -s 'http://127.0.0.1:$PROM_PORT/api/v1/query?query=some_metric'

Ctrl-C stops everything.
TXT
wait -n "${pids[@]}"
