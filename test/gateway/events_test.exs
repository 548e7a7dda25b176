Code.require_file("gateway_helpers.exs", __DIR__)

defmodule Keyring.Gateway.EventsTest do
  # /v1/events against a running node: Keyring's own events arrive, filters
  # and Last-Event-ID resume work, a slow client is told it lagged while the
  # node keeps serving, and 1,000 clients at once all get every event.
  use ExUnit.Case, async: true

  import Keyring.GatewayHelpers
  alias Keyring.Coordinator.Presence
  alias Keyring.Gateway.Events
  alias Keyring.Test.HTTP

  test "a keyring change reaches the stream as keyring.membership" do
    gw = start_gateway(:ev_ring)
    stream = HTTP.sse_open(gw.port, "/v1/events?types=keyring")
    {_, stream} = HTTP.sse_until(stream, "keyring events")
    {:ok, ring} = Keyring.Ring.create("evented", instance: gw.name)
    {:ok, _} = Keyring.Ring.add_member(ring, :crypto.strong_rand_bytes(32), instance: gw.name)
    {text, _} = HTTP.sse_until(stream, "event: keyring.membership")
    assert text =~ ~s("name":"evented")
    assert text =~ "id: "
  end

  test "published events are filtered by type and subject and resume from Last-Event-ID" do
    gw = start_gateway(:ev_resume)
    all = HTTP.sse_open(gw.port)
    {_, all} = HTTP.sse_until(all, "keyring events")
    only_b = HTTP.sse_open(gw.port, "/v1/events?types=app&subject=b")
    {_, only_b} = HTTP.sse_until(only_b, "keyring events")

    {:ok, id1} = Keyring.Gateway.publish("app.tick", %{"n" => 1}, instance: gw.name, subject: "a")
    {:ok, _} = Keyring.Gateway.publish("app.tick", %{"n" => 2}, instance: gw.name, subject: "b")
    {:ok, _} = Keyring.Gateway.publish("other", %{"n" => 3}, instance: gw.name, subject: "b")
    {text, _} = HTTP.sse_until(all, ~s({"n":3}))
    assert text =~ "id: #{id1}\nevent: app.tick\n"
    {text, _} = HTTP.sse_until(only_b, ~s({"n":2}))
    refute text =~ ~s({"n":1})

    resumed = HTTP.sse_open(gw.port, "/v1/events", [{"last-event-id", id1}])
    {text, _} = HTTP.sse_until(resumed, ~s({"n":3}))
    refute text =~ ~s({"n":1})
    assert text =~ ~s({"n":2})
    assert {:error, :bad_kind} = Keyring.Gateway.publish("Bad Type", %{}, instance: gw.name)
  end

  test "a slow client is told it lagged; the node keeps serving and other clients keep up" do
    gw = start_gateway(:ev_slow, replay_events: 64)
    slow = HTTP.sse_open(gw.port)
    {_, slow} = HTTP.sse_until(slow, "keyring events")
    quick = HTTP.sse_open(gw.port, "/v1/events?types=done")
    {_, quick} = HTTP.sse_until(quick, "keyring events")
    pad = String.duplicate("x", 8_000)

    # The slow client reads nothing while ~24 MB of events go by.
    for i <- 1..3_000,
        do:
          {:ok, _} = Keyring.Gateway.publish("bulk", %{"i" => i, "pad" => pad}, instance: gw.name)

    {:ok, _} = Keyring.Gateway.publish("done", %{}, instance: gw.name)
    {_, _} = HTTP.sse_until(quick, "event: done")
    assert serving?(gw)

    {text, _} = HTTP.sse_until(slow, "event: done", 30_000)
    assert text =~ "event: lagged"
    assert Keyring.Gateway.stats(instance: gw.name).lagged >= 1
  end

  test "1,000 concurrent clients each get every event and the node keeps serving" do
    gw = start_gateway(:ev_many)
    me = self()

    clients =
      1..1_000
      |> Task.async_stream(
        fn _ ->
          s = HTTP.sse_open(gw.port)
          {_, {sock, _} = s} = HTTP.sse_until(s, "keyring events", 30_000)
          # Sockets close with the process that opened them: hand them over.
          :ok = :gen_tcp.controlling_process(sock, me)
          s
        end,
        max_concurrency: 100,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, s} -> s end)

    assert Keyring.Gateway.stats(instance: gw.name).sse_clients == 1_000
    assert serving?(gw)

    for i <- 1..5,
        do: {:ok, _} = Keyring.Gateway.publish("fan.out", %{"i" => i}, instance: gw.name)

    clients
    |> Task.async_stream(
      fn s ->
        {text, {sock, _}} = HTTP.sse_until(s, ~s({"i":5}), 30_000)
        :gen_tcp.close(sock)
        length(String.split(text, "event: fan.out")) - 1
      end,
      max_concurrency: 100,
      timeout: 60_000
    )
    |> Enum.each(fn {:ok, n} -> assert n == 5 end)

    assert serving?(gw)
  end

  test "presence messages become presence events with the node as subject" do
    p = %Presence{node_id: "abc", node: :"n@127.0.0.1", incarnation: 2, health: %{memory_mb: 3}}

    {type, subject, data} =
      Events.from_message({:keyring_presence, :down, %{p | status: :down}}, "me", <<0::256>>)

    assert {type, subject} == {"presence.down", "abc"}
    assert data["status"] == "down" and data["node"] == "n@127.0.0.1"

    assert Events.from_message({:keyring_topology, :nodedown, :x@h}, "me", <<0::256>>) ==
             {"topology.nodedown", nil, %{"node" => "x@h"}}

    assert Events.from_message(:unrelated, "me", <<0::256>>) == nil
  end
end
