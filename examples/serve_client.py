"""Route over HTTP: the service of `gentool-router serve`, started in this process on a free port, called with
httpx, then stopped. Offline; needs the "serve" extra (`pip install "gentool-router[serve]"`) and httpx.

    .venv/bin/python examples/serve_client.py

Against a running server, only the client part is needed:

    gentool-router index tools.jsonl --out my-index
    gentool-router serve --index my-index --port 8080        # then: httpx.post("http://127.0.0.1:8080/v1/route", ...)
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from gentool_router import ToolRouter
from gentool_router.examples import example_tools
from gentool_router.serve import create_app


def main() -> None:
    router = ToolRouter.from_tools(example_tools(), show_progress=False)
    router.route("warm-up")  # load the selector now, not on the first request
    listener = socket.create_server(("127.0.0.1", 0))  # any free port
    server = uvicorn.Server(uvicorn.Config(create_app(router), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            health = client.get("/healthz").json()
            print(f"{url}: {health['status']}, {health['tools']} tools, selector {health['selector']['kind']}")
            for query in ["Will it rain in Lisbon over the next three days?", "Write a haiku about autumn leaves"]:
                route = client.post("/v1/route", json={"query": query}).json()
                top = ", ".join(f"{c['name']} {c['score']:.2f}" for c in route["ranking"][:3])
                print(f"{query!r} -> {route['tool'] or 'generate_response'}  ({top}; decided by {route['decided_by']})")
            history = [{"role": "user", "content": "I fly to Oslo on Friday."},
                       {"role": "assistant", "content": "Nice! Anything I can help with?"},
                       {"role": "user", "content": "What will the weather be like there?"}]
            route = client.post("/v1/route", json={"messages": history, "context_turns": 2}).json()
            print(f"chat history, last two user turns {route['query']!r} -> {route['tool'] or 'generate_response'}")
    finally:
        server.should_exit = True  # what Ctrl+C does to `gentool-router serve`: finish requests, then stop
        thread.join()


if __name__ == "__main__":
    main()
