"""Drives a Keyring node's MCP endpoint with the official Python SDK (`mcp`).

    python mcp_sdk_client.py URL TOKEN

Connects twice, once per era: mode="legacy" (initialize handshake, 2025-11-25)
and mode="auto" (server/discover, then stateless 2026-07-28 requests). Each
time it lists the tools, calls read-only ones, calls a mutating one without
and with the bearer token, and prints one JSON line with what it saw.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def transport(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return streamable_http_client(url, http_client=create_mcp_http_client(headers=headers), terminate_on_close=False)


def text(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def run(url, token, mode):
    out = {"mode": mode}
    async with Client(transport(url), mode=mode) as client:
        out["protocol_version"] = client.protocol_version
        out["server_name"] = client.server_info.name if client.server_info else None
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        status = await client.call_tool("keyring_status", {})
        out["status_is_error"] = bool(status.is_error)
        out["status_node_id"] = (status.structured_content or {}).get("node", {}).get("node_id")
        refused = await client.call_tool("keyring_blob_put", {"text": "from " + mode})
        out["put_without_token_is_error"] = bool(refused.is_error)
        out["put_without_token_text"] = text(refused)
    async with Client(transport(url, token), mode=mode) as client:
        put = await client.call_tool("keyring_blob_put", {"text": "from the sdk, " + mode})
        out["put_is_error"] = bool(put.is_error)
        cid = (put.structured_content or {}).get("cid")
        got = await client.call_tool("keyring_blob_get", {"cid": cid})
        out["roundtrip"] = (got.structured_content or {}).get("text")
    return out


async def main():
    url, token = sys.argv[1], sys.argv[2]
    results = [await run(url, token, "legacy"), await run(url, token, "auto")]
    print(json.dumps({"ok": True, "results": results}))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:  # report, so the ExUnit side shows why
        print(json.dumps({"ok": False, "error": repr(e)}))
        sys.exit(1)
