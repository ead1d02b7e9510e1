# bench/metrics.sh — sourced by the benchmark scripts: one scrape of a
# running atpd's metrics, with bash's /dev/tcp (no client to install).
# metrics PORT: the text of http://127.0.0.1:PORT/metrics on stdout
metrics() {
	exec 3<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	cat <&3
	exec 3<&-
}
