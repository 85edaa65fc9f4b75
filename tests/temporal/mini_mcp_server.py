"""A minimal stdio MCP server without dependencies (starts in milliseconds): `garbage` first writes a non-JSON line."""

import json
import sys

if "garbage" in sys.argv:
    print("garbage before the handshake", flush=True)
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue  # a notification
    method = message.get("method")
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "mini", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "ping", "description": "Ping.", "inputSchema": {"type": "object"}}]}
    else:
        result = {}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
