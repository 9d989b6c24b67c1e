"""A rogue listener for the network.security fault: accepts connections and says nothing."""

from __future__ import annotations

import argparse
import socket


def main() -> None:
    """Listen on every address of the host's namespace until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with socket.create_server(("0.0.0.0", args.port), reuse_port=False) as server:  # noqa: S104
        while True:
            conn, _ = server.accept()
            conn.close()


if __name__ == "__main__":
    main()
