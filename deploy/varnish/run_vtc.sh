#!/bin/sh
# Run the varnishtest cases in tests/ against the shipped default.vcl (and the
# shop.vcl it includes).
#
#   deploy/varnish/run_vtc.sh                    compile check, then every case
#   deploy/varnish/run_vtc.sh tests/grace.vtc    compile check, then these cases
#   deploy/varnish/run_vtc.sh render ADDR PORT   print default.vcl aimed at ADDR:PORT
#   deploy/varnish/run_vtc.sh render-cluster A1 P1 A2 P2 A3 P3
#                                                print cluster.vcl, node1..node3 aimed at them
#
# How a case gets its backend: each .vtc starts a fake backend `server s1`, runs
#     sh ${testdir}/../run_vtc.sh render ${s1_addr} ${s1_port} > default.vcl
# in its own temporary directory, and loads that copy with `include`. Rendering
# rewrites only the backend's .host and .port values, the same ones `make stack`
# rewrites, so every decision under test is the shipped VCL, byte for byte. It
# fails if either value is not found exactly once. The cluster_*.vtc cases start
# three fake nodes and render cluster.vcl with `render-cluster`, which rewrites the
# .host and .port of each of its three backends. A case also runs on its own:
#     varnishtest deploy/varnish/tests/grace_serves_stale_on_error.vtc
#
# Exits non-zero if the VCL does not compile or any case fails, and ends with
#     varnishtest: N passed, M failed
set -eu

here=$(cd "$(dirname "$0")" && pwd)
vcl="$here/default.vcl"
cluster_vcl="$here/cluster.vcl"

render() {
    for value in '\.host = "127\.0\.0\.1";' '\.port = "8081";'; do
        if [ "$(grep -c "$value" "$vcl")" != 1 ]; then
            echo "run_vtc.sh: expected one line matching '$value' in $vcl" >&2
            exit 1
        fi
    done
    # The copy lives in the case's temporary folder: its include of ./shop.vcl is made
    # absolute, so it still reads the shipped shop.vcl next to this script.
    sed -e "s/\\.host = \"127\\.0\\.0\\.1\";/.host = \"$1\";/" \
        -e "s/\\.port = \"8081\";/.port = \"$2\";/" \
        -e "s|^include \"\\./|include \"$here/|" "$vcl"
}

# Print cluster.vcl with backend nodeN aimed at the Nth ADDR PORT pair (three pairs).
render_cluster() {
    if [ "$#" != 6 ] || [ "$(grep -c '^backend node[0-9]* {' "$cluster_vcl")" != 3 ]; then
        echo "run_vtc.sh: render-cluster takes 3 ADDR PORT pairs, for the 3 backends of $cluster_vcl" >&2
        exit 1
    fi
    awk -v here="$here" -v a1="$1" -v p1="$2" -v a2="$3" -v p2="$4" -v a3="$5" -v p3="$6" '
        BEGIN { addr[1] = a1; port[1] = p1; addr[2] = a2; port[2] = p2; addr[3] = a3; port[3] = p3 }
        /^backend node[0-9]+ \{/ { node = substr($2, 5) + 0 }
        /^}/ { node = 0 }
        node && /^ *\.host = / { sub(/".*"/, "\"" addr[node] "\"") }
        node && /^ *\.port = / { sub(/".*"/, "\"" port[node] "\"") }
        /^include "\.\// { sub(/"\.\//, "\"" here "/") }
        { print }
    ' "$cluster_vcl"
}

if [ "${1:-}" = render ]; then
    render "$2" "$3"
    exit 0
fi
if [ "${1:-}" = render-cluster ]; then
    shift
    render_cluster "$@"
    exit 0
fi

for tool in varnishtest varnishd; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "run_vtc.sh: $tool not found; install Varnish 7 (apt-get install varnish)" >&2
        exit 2
    fi
done
PATH="$PATH:/usr/sbin"

# The shipped file must compile as is, with its real backend.
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
# (-n: a fresh instance directory, so the check needs no running varnishd.)
if ! varnishd -C -n "$workdir/varnishd" -f "$vcl" >/dev/null 2>"$workdir/vcc.log"; then
    cat "$workdir/vcc.log" >&2
    echo "run_vtc.sh: $vcl does not compile" >&2
    echo "varnishtest: 0 passed, 1 failed"
    exit 1
fi
if ! varnishd -C -n "$workdir/varnishd" -f "$cluster_vcl" >/dev/null 2>"$workdir/vcc.log"; then
    cat "$workdir/vcc.log" >&2
    echo "run_vtc.sh: $cluster_vcl does not compile" >&2
    echo "varnishtest: 0 passed, 1 failed"
    exit 1
fi

if [ "$#" -eq 0 ]; then
    set -- "$here"/tests/*.vtc
fi

# -k: keep going after a failure, so the summary counts every case;
# -j 4: four cases at a time; they mostly wait on timers, not on the CPU.
status=0
varnishtest -k -j 4 "$@" >"$workdir/out" 2>&1 || status=$?
cat "$workdir/out"
passed=$(grep -c '^#.* TEST .* passed' "$workdir/out" || true)
failed=$(( $# - passed ))
echo "varnishtest: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    exit 1
fi
