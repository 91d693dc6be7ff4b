"""The web tier as the Procfile runs it spreads the clients' connections over its processes.

A web process keeps each connection it accepted for as long as the client keeps it alive (browsers, a proxy's
upstream pool and a load generator all do), and runs Python on one core at a time. From one shared listening socket,
whichever process wakes first takes each new connection: under a burst of 50, one process was seen holding 46 while
the other idled, and every client of the first waited for it. granian, on Linux, has each worker process listen on a
socket of its own (SO_REUSEPORT), and the kernel hashes each new connection to one of them.
"""

import http.client
import os

from bench.load import TCP_LISTEN, connections_per_process, tcp_sockets
from tests.reliability.procs import WebServer, child_env, free_port, wait_until

CONNECTIONS = 40


def test_the_procfiles_web_processes_share_kept_alive_connections(tmp_path):
    # No database (nothing listens on its port): /healthz answers 503 at once, which is all the test needs.
    env = child_env(redis_url=os.environ["REDIS_URL"], database_url=f"postgres://postgres@127.0.0.1:{free_port()}/x")
    web = WebServer(env=env, log_dir=tmp_path)  # as the Procfile runs it, its defaults included
    port = web.port
    clients = []
    try:
        web.start()
        workers = wait_until(lambda: len(web.worker_pids()) == 2 and web.worker_pids(), timeout=30,
                             what="the Procfile's two web processes")
        # Both processes listening (each opens its own socket as it boots): a connection hashed to one still booting
        # would wait for it, not go to the other.
        wait_until(lambda: len(tcp_sockets(port, state=TCP_LISTEN)) == 2, timeout=30, what="both processes listening")
        for _ in range(CONNECTIONS):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            client.request("GET", "/healthz")
            response = client.getresponse()
            response.read()
            assert response.status in (200, 503) and not response.will_close  # kept alive
            clients.append(client)
        held = wait_until(lambda: (c := connections_per_process(workers, port=port)) and sum(c) == CONNECTIONS and c,
                          timeout=10, what="every connection held by a web process")
        # Hashed over two sockets, 40 connections split at worst 35/5 but for a chance of one in 10^6.
        assert len(held) == 2 and min(held) >= 5, held
    finally:
        for client in clients:
            client.close()
        web.stop()

