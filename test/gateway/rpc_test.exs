Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.RPCTest do
  # RPC through the gateway is a call from this node: the peer's default-deny
  # rules decide, exactly as for Keyring.call/4 from Elixir.
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers
  alias Keyring.Test.Instances

  setup do
    gw = start_gateway(:rpc_gw)
    peer = Instances.start_instance(:rpc_peer)
    outsider = Instances.start_instance(:rpc_out)
    Instances.ring_with(peer, [gw.name])

    :ok =
      Keyring.expose(:echo, fn args -> %{"got" => args, "tuple" => {:a, 1}} end, instance: peer)

    :ok =
      Keyring.expose(:admins_only, fn _ -> :secret end,
        instance: peer,
        authorize: fn caller -> caller.admin end
      )

    :ok = Keyring.expose(:boom, fn _ -> raise "no" end, instance: peer)
    {:ok, gw: gw, peer: Instances.id(peer), outsider: Instances.id(outsider)}
  end

  test "an exposed handle answers, with JSON arguments and a JSON-safe reply", ctx do
    r =
      post(ctx.gw, "/v1/rpc/#{ctx.peer}/echo", %{
        "args" => %{"n" => [1, 2.5, "x", nil, true]},
        "timeout_ms" => 10_000
      })

    assert r.status == 200, inspect(r.json)
    assert r.json["reply"] == %{"got" => %{"n" => [1, 2.5, "x", nil, true]}, "tuple" => ["a", 1]}
  end

  test "default deny holds: unexposed 404, refused by authorize 403, crash 502", ctx do
    assert %{status: 404, json: %{"error" => %{"code" => "not_found"}}} =
             post(ctx.gw, "/v1/rpc/#{ctx.peer}/not_exposed", %{"timeout_ms" => 10_000})

    assert %{status: 403, json: %{"error" => %{"code" => "forbidden"}}} =
             post(ctx.gw, "/v1/rpc/#{ctx.peer}/admins_only", %{"timeout_ms" => 10_000})

    assert %{status: 502, json: %{"error" => %{"code" => "handler_error"}}} =
             post(ctx.gw, "/v1/rpc/#{ctx.peer}/boom", %{"timeout_ms" => 10_000})
  end

  test "a call names the keyring to speak for", ctx do
    ring = Keyring.Ring.list(instance: ctx.gw.name) |> hd() |> Keyring.Identity.NodeId.encode()

    r =
      post(ctx.gw, "/v1/rpc/#{ctx.peer}/echo", %{
        "args" => 1,
        "keyring" => ring,
        "timeout_ms" => 10_000
      })

    assert r.status == 200 and r.json["reply"]["got"] == 1
  end

  test "a node that shares no keyring cannot be called", ctx do
    assert %{status: 403, json: %{"error" => %{"code" => "not_member"}}} =
             post(ctx.gw, "/v1/rpc/#{ctx.outsider}/echo", %{})

    assert %{status: 404} = post(ctx.gw, "/v1/rpc/not-an-id/echo", %{})
  end

  test "a call needs the token", ctx do
    r =
      Keyring.Test.HTTP.request(
        ctx.gw.port,
        "POST",
        "/v1/rpc/#{ctx.peer}/echo",
        [{"content-type", "application/json"}],
        "{}"
      )

    assert r.status == 401
  end
end
