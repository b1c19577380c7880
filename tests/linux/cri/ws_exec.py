"""The client half of a CRI streaming exec, as kubectl exec -it speaks it:
a websocket to the URL containerd's Exec returned, subprotocol
v4.channel.k8s.io, each message one channel byte then data (0 stdin,
1 stdout, 2 stderr, 3 the final status as JSON, 4 a terminal resize).

    python3 ws_exec.py URL INPUT

sends INPUT on stdin and prints {"output": ..., "status": ...} as JSON.
It runs inside the test's network namespace, where the streaming server
listens on 127.0.0.1.
SPDX-License-Identifier: GPL-3.0-or-later"""

import json
import sys

import websocket

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


def main() -> None:
    url, text = sys.argv[1], sys.argv[2]
    ws = websocket.create_connection(url.replace("http://", "ws://"), subprotocols=["v4.channel.k8s.io"],
                                     timeout=60)
    ws.send_binary(bytes([RESIZE]) + json.dumps({"Width": 80, "Height": 24}).encode())
    ws.send_binary(bytes([STDIN]) + text.encode())
    output, status = b"", None
    while status is None:
        try:
            frame = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            break
        if not frame:
            continue
        data = frame if isinstance(frame, bytes) else frame.encode()
        if data[0] in (STDOUT, STDERR):
            output += data[1:]
        elif data[0] == ERROR:
            status = json.loads(data[1:] or b"{}")
    ws.close()
    print(json.dumps({"output": output.decode(errors="replace"), "status": status}))


if __name__ == "__main__":
    main()
