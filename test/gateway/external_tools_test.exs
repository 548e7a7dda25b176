Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.ExternalToolsTest do
  # The gateway against tools made by others, run as separate programs:
  # the official MCP Python SDK (both eras) and schemathesis checking the
  # running server against priv/openapi.json. bin/setup installs both into
  # _build/venv (test/gateway/requirements.txt).
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers

  @moduletag :external
  @moduletag timeout: 300_000
  @python Path.expand("../../_build/venv/bin/python", __DIR__)
  @schemathesis Path.expand("../../_build/venv/bin/schemathesis", __DIR__)
  @openapi Path.expand("../../priv/openapi.json", __DIR__)

  test "the official MCP SDK talks to the node in both eras" do
    gw = start_gateway(:mcp_sdk)
    script = Path.expand("mcp_sdk_client.py", __DIR__)

    {out, status} =
      System.cmd(@python, [script, gw.url <> "mcp", gw.token], stderr_to_stdout: true)

    assert status == 0, out

    {:ok, %{"ok" => true, "results" => [legacy, modern]}} =
      out |> String.split("\n", trim: true) |> List.last() |> Keyring.Gateway.JSON.decode()

    assert legacy["protocol_version"] == "2025-11-25"
    assert modern["protocol_version"] == "2026-07-28"
    me = Keyring.Identity.node_id(instance: gw.name)

    for r <- [legacy, modern] do
      assert r["server_name"] == "keyring"
      assert "keyring_status" in r["tools"] and "keyring_rpc_call" in r["tools"]
      assert r["status_is_error"] == false and r["status_node_id"] == me
      assert r["put_without_token_is_error"] == true
      assert r["put_is_error"] == false
      assert r["roundtrip"] == "from the sdk, " <> r["mode"]
    end
  end

  test "schemathesis finds the running server conforming to the OpenAPI document" do
    gw = start_gateway(:schemathesis)
    :ok = Keyring.Coordinator.register(:upcase, &Function.identity/1, instance: gw.name)
    {:ok, ring} = Keyring.Ring.create("schema", instance: gw.name)
    _ = ring

    args = [
      "run",
      @openapi,
      "--url",
      String.trim_trailing(gw.url, "/"),
      "--header",
      "Authorization: Bearer #{gw.token}",
      "--checks",
      "all",
      "--max-examples",
      "25",
      "--workers",
      "1",
      "--seed",
      "1",
      # A stream that never ends, and JSON-RPC (driven by the MCP SDK instead).
      "--exclude-path",
      "/v1/events",
      "--exclude-path",
      "/mcp"
    ]

    # Run elsewhere: schemathesis keeps a cache directory where it runs.
    {out, status} =
      System.cmd(@schemathesis, args,
        stderr_to_stdout: true,
        env: [{"NO_COLOR", "1"}],
        cd: System.tmp_dir!()
      )

    assert status == 0, out
    assert out =~ "No issues found"
    assert serving?(gw)
  end
end
