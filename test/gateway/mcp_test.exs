Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.MCPTest do
  # POST /mcp with hand-written messages, both eras: the 2025 revisions
  # (initialize, ping, tools/list, tools/call) and 2026-07-28
  # (server/discover, _meta, header checks). The official Python SDK drives
  # it too (mcp_sdk_test.exs).
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers
  alias Keyring.Gateway.JSON
  alias Keyring.Test.HTTP

  @modern "2026-07-28"
  @meta %{
    "io.modelcontextprotocol/protocolVersion" => @modern,
    "io.modelcontextprotocol/clientCapabilities" => %{}
  }

  setup do
    {:ok, gw: start_gateway(:mcp)}
  end

  defp rpc(gw, message, headers \\ []) do
    HTTP.request(
      gw.port,
      "POST",
      "/mcp",
      [{"content-type", "application/json"}, {"accept", "application/json, text/event-stream"}] ++
        headers,
      JSON.encode!(message)
    )
  end

  defp modern(gw, id, method, params \\ %{}, extra \\ []) do
    name = params["name"]

    headers =
      [{"mcp-protocol-version", @modern}, {"mcp-method", method}] ++
        if(name, do: [{"mcp-name", name}], else: [])

    rpc(
      gw,
      %{
        "jsonrpc" => "2.0",
        "id" => id,
        "method" => method,
        "params" => Map.put(params, "_meta", @meta)
      },
      headers ++ extra
    )
  end

  test "legacy clients: initialize, ping, tools/list, tools/call", %{gw: gw} do
    r =
      rpc(gw, %{
        "jsonrpc" => "2.0",
        "id" => 1,
        "method" => "initialize",
        "params" => %{
          "protocolVersion" => "2025-06-18",
          "capabilities" => %{},
          "clientInfo" => %{"name" => "t", "version" => "1"}
        }
      })

    assert r.status == 200
    assert r.json["result"]["protocolVersion"] == "2025-06-18"
    assert r.json["result"]["capabilities"]["tools"]
    assert r.json["result"]["serverInfo"]["name"] == "keyring"

    assert %{status: 202, body: ""} =
             rpc(gw, %{"jsonrpc" => "2.0", "method" => "notifications/initialized"})

    h = [{"mcp-protocol-version", "2025-06-18"}]

    assert %{json: %{"id" => 2, "result" => %{}}} =
             rpc(gw, %{"jsonrpc" => "2.0", "id" => 2, "method" => "ping"}, h)

    %{json: %{"result" => %{"tools" => tools}}} =
      rpc(gw, %{"jsonrpc" => "2.0", "id" => 3, "method" => "tools/list"}, h)

    names = Enum.map(tools, & &1["name"])

    assert "keyring_status" in names and "keyring_rpc_call" in names and
             "keyring_blob_put" in names

    assert Enum.all?(tools, &(&1["inputSchema"]["type"] == "object"))

    r =
      rpc(
        gw,
        %{
          "jsonrpc" => "2.0",
          "id" => "s",
          "method" => "tools/call",
          "params" => %{"name" => "keyring_identity", "arguments" => %{}}
        },
        h
      )

    assert r.json["result"]["isError"] == false

    assert r.json["result"]["structuredContent"]["node_id"] ==
             Keyring.Identity.node_id(instance: gw.name)

    # An unknown version in initialize is answered with ours.
    r =
      rpc(gw, %{
        "jsonrpc" => "2.0",
        "id" => 4,
        "method" => "initialize",
        "params" => %{"protocolVersion" => "2024-01-01"}
      })

    assert r.json["result"]["protocolVersion"] == "2025-11-25"
  end

  test "modern clients: server/discover, tools with resultType and cache hints", %{gw: gw} do
    r = modern(gw, "d", "server/discover")
    assert r.status == 200
    res = r.json["result"]
    assert res["resultType"] == "complete"
    assert hd(res["supportedVersions"]) == @modern
    assert "2025-03-26" in res["supportedVersions"]
    assert res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "keyring"
    assert is_integer(res["ttlMs"]) and res["cacheScope"] in ["public", "private"]
    %{json: %{"result" => list}} = modern(gw, 2, "tools/list")
    assert list["resultType"] == "complete" and is_list(list["tools"]) and list["ttlMs"] > 0

    %{json: %{"result" => call}} =
      modern(gw, 3, "tools/call", %{"name" => "keyring_status", "arguments" => %{}})

    assert call["resultType"] == "complete" and call["isError"] == false

    assert call["structuredContent"]["node"]["node_id"] ==
             Keyring.Identity.node_id(instance: gw.name)
  end

  test "modern header checks and unknown methods", %{gw: gw} do
    body = %{
      "jsonrpc" => "2.0",
      "id" => 1,
      "method" => "tools/list",
      "params" => %{"_meta" => @meta}
    }

    r = rpc(gw, body, [{"mcp-protocol-version", @modern}])
    assert r.status == 400 and r.json["error"]["code"] == -32020
    r = rpc(gw, body, [{"mcp-protocol-version", @modern}, {"mcp-method", "tools/call"}])
    assert r.status == 400 and r.json["error"]["code"] == -32020

    call = %{
      "jsonrpc" => "2.0",
      "id" => 2,
      "method" => "tools/call",
      "params" => %{"name" => "keyring_status", "arguments" => %{}, "_meta" => @meta}
    }

    r =
      rpc(gw, call, [
        {"mcp-protocol-version", @modern},
        {"mcp-method", "tools/call"},
        {"mcp-name", "keyring_identity"}
      ])

    assert r.status == 400 and r.json["error"]["code"] == -32020
    r = rpc(gw, body, [{"mcp-protocol-version", "1999-01-01"}])
    assert r.status == 400 and r.json["error"]["code"] == -32022
    assert r.json["error"]["data"]["supported"] |> hd() == @modern
    r = modern(gw, 5, "resources/list")
    assert r.status == 404 and r.json["error"]["code"] == -32601
    r = modern(gw, 6, "initialize")
    assert r.status == 404, "initialize is not a method of the stateless era"
    assert %{status: 405} = HTTP.request(gw.port, "GET", "/mcp")
    assert %{status: 405} = HTTP.request(gw.port, "DELETE", "/mcp")
  end

  test "tools that change state need the token", %{gw: gw} do
    args = %{"name" => "keyring_keyring_create", "arguments" => %{"name" => "from-mcp"}}
    %{json: %{"result" => res}} = modern(gw, 1, "tools/call", args)
    assert res["isError"] == true
    assert res["structuredContent"]["error"]["code"] == "token_required"
    assert Keyring.Ring.list(instance: gw.name) == []
    %{json: %{"result" => res}} = modern(gw, 2, "tools/call", args, [HTTP.bearer(gw.token)])
    assert res["isError"] == false
    assert [_] = Keyring.Ring.list(instance: gw.name)
  end

  test "tool errors are results, unknown tools are invalid params", %{gw: gw} do
    %{json: %{"result" => res}} =
      modern(gw, 1, "tools/call", %{
        "name" => "keyring_blob_info",
        "arguments" => %{"cid" => "nope"}
      })

    assert res["isError"] and res["structuredContent"]["error"]["code"] == "bad_request"
    r = modern(gw, 2, "tools/call", %{"name" => "keyring_nothing", "arguments" => %{}})
    assert r.json["error"]["code"] == -32602

    %{json: %{"result" => put}} =
      modern(
        gw,
        3,
        "tools/call",
        %{"name" => "keyring_blob_put", "arguments" => %{"text" => "hi mcp"}},
        [HTTP.bearer(gw.token)]
      )

    cid = put["structuredContent"]["cid"]

    %{json: %{"result" => got}} =
      modern(gw, 4, "tools/call", %{"name" => "keyring_blob_get", "arguments" => %{"cid" => cid}})

    assert got["structuredContent"]["text"] == "hi mcp"
  end
end
