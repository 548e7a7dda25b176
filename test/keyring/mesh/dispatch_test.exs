defmodule Keyring.Mesh.DispatchTest do
  use ExUnit.Case, async: false
  import Keyring.Test.Instances

  alias Keyring.Mesh.Server

  setup do
    [a, b] = [start_instance(:a), start_instance(:b)]
    ring_with(a, [b])
    :ok = Keyring.expose(:echo, & &1, instance: a)
    {:ok, "warm"} = Keyring.call(id(a), :echo, "warm", instance: b)
    %{a: a, b: b}
  end

  test "calls and their answers do not pass through a busy mesh server", ctx do
    # The serving node's mesh server is stuck (as in a long membership
    # merge): calls to it are still dispatched and answered.
    server = Process.whereis(Server.server(ctx.a))
    :sys.suspend(server)

    try do
      for i <- 1..20, do: assert({:ok, ^i} = Keyring.call(id(ctx.a), :echo, i, instance: ctx.b))
    after
      :sys.resume(server)
    end
  end

  test "a handler past its timeout answers :unavailable and frees the caller's place", ctx do
    :ok =
      Keyring.expose(:slow, fn _ -> Process.sleep(:infinity) end, timeout: 100, instance: ctx.a)

    for _ <- 1..3,
        do: assert({:error, :unavailable} = Keyring.call(id(ctx.a), :slow, 1, instance: ctx.b))

    # The places of the killed handlers came back: the peer is not busy.
    assert {:ok, 1} = Keyring.call(id(ctx.a), :echo, 1, instance: ctx.b)
    gate = Keyring.Instance.fetch!(ctx.a, :gate)
    assert [{_, 0}] = :ets.match_object(gate, {{:peer, key(ctx.b)}, :_})
  end
end
