defmodule Keyring.Cluster.RoutingTest do
  use ExUnit.Case, async: false
  @moduletag :cluster
  @moduletag timeout: 120_000

  alias Keyring.Test.{Handlers, Peers}
  import Keyring.Test.Eventually

  setup_all do
    [a, b, c] = peers = Peers.start_many(:route, 3, coordinator: [heartbeat: 300])
    Peers.connect_all(peers)
    :ok = Peers.call(b, Keyring.Coordinator, :register, [:echo, {Handlers, :echo, []}])
    :ok = Peers.call(b, Keyring.Coordinator, :register, [:slow, {Handlers, :slow, []}])
    :ok = Peers.call(c, Keyring.Coordinator, :register, [:slow, {Handlers, :slow, []}])
    :ok = Peers.call(c, Keyring.Coordinator, :register, [:boom, {Handlers, :boom, []}])

    eventually(
      fn ->
        caps = a |> Peers.presence() |> Map.values() |> Enum.flat_map(& &1.capabilities)
        Enum.sort(caps) == [:boom, :echo, :slow, :slow]
      end,
      30_000,
      "capabilities visible on a"
    )

    on_exit(fn -> Peers.stop_all(peers) end)
    {:ok, a: a, b: b, c: c}
  end

  defp route(p, cap, task, opts \\ []),
    do: Peers.call(p, Keyring.Coordinator, :route, [cap, task, opts], 60_000)

  test "a task runs on the node that registered the capability", %{a: a, b: b} do
    assert route(a, :echo, 42) == {:ok, {b.node, 42}}
  end

  test "unknown capabilities and crashing handlers give errors", %{a: a} do
    assert route(a, :nothing_here, 1) == {:error, :no_capability}
    assert {:error, {:handler_crashed, "boom"}} = route(a, :boom, 1)
  end

  test "a slow handler times out", %{a: a} do
    assert route(a, :slow, 5_000, timeout: 200) == {:error, :timeout}
  end

  test "a custom strategy picks the node", %{a: a, c: c} do
    assert route(a, :slow, 1, strategy: Keyring.Test.PickLast) == {:ok, {:slept, c.node}}
  end

  test "the node going down mid-task gives :nodedown", %{a: a} do
    d =
      Peers.start(:"route_doomed_#{System.pid()}_#{System.unique_integer([:positive])}",
        coordinator: [heartbeat: 300]
      )

    on_exit(fn -> Peers.stop(d) end)
    true = Peers.connect(d, a)
    :ok = Peers.call(d, Keyring.Coordinator, :register, [:doomed, {Handlers, :slow, []}])

    eventually(
      fn -> a |> Peers.presence() |> Map.values() |> Enum.any?(&(:doomed in &1.capabilities)) end,
      30_000,
      ":doomed visible on a"
    )

    task = Task.async(fn -> route(a, :doomed, 20_000, timeout: 30_000) end)

    eventually(
      fn ->
        Peers.call(d, :erlang, :processes, [])
        |> Enum.any?(fn pid ->
          Peers.call(d, Process, :info, [pid, :current_function]) ==
            {:current_function, {Process, :sleep, 1}}
        end)
      end,
      10_000,
      "handler running on d"
    )

    Peers.kill(d)
    assert Task.await(task, 30_000) == {:error, :nodedown}
  end
end
