"""Starting and stopping real servers on loopback, for `make stack`, the tests and the benchmark.

    process.py   Process (start with a command, wait for a port or a URL, stop by PID: SIGTERM
                 then SIGKILL, a log file and its tail), free_ports, log_tail, StackError
    servers.py   throwaway servers of our own: MariaDB, Redis, memcached, Varnish
    script.py    progress lines and SIGTERM handling for the scripts that start servers

deploy/stack.py's Stack runs the production stack with these. Nothing here ships to a server.
"""
